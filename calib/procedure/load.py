"""Read a procedure TOML file into a validated :class:`Procedure`.

Every problem becomes one :class:`~calib.errors.ProcedureError` line of the
form ``<file>: <field.path>: <what was expected>, got <value>``.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from calib.errors import ProcedureError
from calib.procedure.consistency import check_consistency
from calib.procedure.spec import Procedure

_TYPE_WORDS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number (not nan or inf)",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_COMPARISONS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def load_procedure(path: str | Path) -> Procedure:
    """Read, parse and validate a procedure file.

    Parameters
    ----------
    path : str or Path
        The TOML file.

    Returns
    -------
    Procedure
        Validated; ``source_path``, ``source_text`` and ``sha256`` are set.

    Raises
    ------
    ProcedureError
        One line naming the file, the field path and what was expected.
    """
    path = Path(path)
    return parse_procedure(read_toml_text(path, "procedure"), source=str(path))


def read_toml_text(path: Path, what: str) -> str:
    """Return the text of a TOML file, or a one-line ProcedureError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProcedureError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProcedureError(f"{path}: cannot read: {exc}") from None


M = TypeVar("M", bound=BaseModel)


def validate_toml(text: str, source: str, model: type[M],
                  migrate: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> M:
    """Parse TOML ``text`` into ``model``; every problem is one ProcedureError line naming ``source``.

    ``migrate`` rewrites the parsed table first (older layouts of the same file kind).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProcedureError(f"{source}: invalid TOML: {exc}") from None
    if migrate is not None:
        data = migrate(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProcedureError(f"{source}: {describe_validation_error(exc, model)}") from None


def migrate_driver_geometry(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade procedures written before the product geometry moved to ``[[drivers]]``.

    Procedures written before the product geometry moved to ``[[drivers]]`` (the procedure
    text stored in older measurement and calibration files): a driver without ``position_m``
    takes ``position_m`` and ``axis_deg`` from its ``[sim.drivers.<name>]`` table.
    """
    sim_drivers = data.get("sim", {}).get("drivers", {}) if isinstance(data.get("sim"), dict) else {}
    drivers = data.get("drivers")
    if not isinstance(drivers, list) or not isinstance(sim_drivers, dict):
        return data
    for driver in drivers:
        name = driver.get("name") if isinstance(driver, dict) else None
        old = sim_drivers.get(name) if isinstance(name, str) else None  # anything else: validation says so
        if isinstance(old, dict) and "position_m" not in driver and "position_m" in old:
            driver["position_m"] = old.pop("position_m")
            if "axis_deg" in old:
                driver["axis_deg"] = old.pop("axis_deg")
    return data


def parse_procedure(text: str, source: str = "<procedure>") -> Procedure:
    """Parse and validate procedure TOML ``text``; ``source`` names it in errors."""
    procedure = validate_toml(text, source, Procedure, migrate_driver_geometry)
    problem = check_consistency(procedure)
    if problem is not None:
        raise ProcedureError(f"{source}: {problem}")
    procedure._source_path = source
    procedure._source_text = text
    return procedure


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """Return the first error of ``exc`` as ``field.path: expected ..., got ...``."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if kind == "missing":
        return f"{format_loc(loc)}: required field is missing"
    if kind == "extra_forbidden":
        valid = ", ".join(_field_names(root, loc[:-1])) or "none"
        return f"{format_loc(loc)}: unknown key; expected one of: {valid}"
    if kind in _TYPE_WORDS:
        what = f"expected {_TYPE_WORDS[kind]}"
    elif kind in _COMPARISONS:
        key, op = _COMPARISONS[kind]
        what = f"expected a number {op} {ctx[key]}"
    elif kind == "too_short":
        what = f"expected at least {ctx['min_length']} item(s)"
    elif kind == "too_long":
        what = f"expected at most {ctx['max_length']} item(s)"
    elif kind == "string_pattern_mismatch":
        what = f"expected a name matching {ctx['pattern']}"
    elif kind == "string_too_short":
        what = "expected a non-empty string"
    elif kind == "literal_error":
        what = f"expected one of {ctx['expected']}"
    elif kind == "value_error":
        # Our own validators already say "expected ..., got ...".
        return f"{format_loc(loc)}: {str(ctx.get('error', error['msg']))}"
    else:
        what = error["msg"][0].lower() + error["msg"][1:]
    return f"{format_loc(loc)}: {what}, got {_show(given)}"


def format_loc(loc: tuple[Any, ...]) -> str:
    """``('drivers', 0, 'name')`` -> ``drivers[0].name`` (TOML keys are strings, list indices ints)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def _field_names(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``root``."""
    annotation: Any = root
    for part in loc:
        model = _unwrap_model(annotation)
        if model is not None and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            continue
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
        if origin in (list, tuple) and args:
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        elif args:
            annotation = args[0]
    model = _unwrap_model(annotation)
    return list(model.model_fields) if model is not None else []


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None
