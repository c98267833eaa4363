"""Fleet results: a database of products, stations, units, runs, checks and files, and the statistics over it.

SQLite in ``measurements/results.db`` by default; PostgreSQL for a line of
stations sharing one database (a URL in the station file, ``--db`` or
``CALIB_RESULTS_DB``). :mod:`calib.fleet.store` records and queries,
:mod:`calib.fleet.stats` computes yield, Cp/Cpk and outliers,
:mod:`calib.fleet.limits` derives acceptance limits from golden units.
"""
