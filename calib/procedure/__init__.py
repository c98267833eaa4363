"""Procedures: one validated TOML file per product."""

from calib.procedure.load import load_procedure, parse_procedure
from calib.procedure.spec import Position, Procedure

__all__ = ["Position", "Procedure", "load_procedure", "parse_procedure"]
