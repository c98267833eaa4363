"""Stages of the chain that touch files: fit, verify, report."""
