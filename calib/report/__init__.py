"""Reports: a PDF per unit and the results table."""
