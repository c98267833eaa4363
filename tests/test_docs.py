"""The design documents stay true where a machine can check them (docs/README.md).

- Every group, dataset and attribute the measurement and calibration writers
  put into a file is named in docs/file-formats.md, and every plain path the
  document's tables list exists in such a file (both files are written here,
  small, with the real writers).
- Every constant HDF5 name written anywhere in the package (``create_dataset``,
  ``create_group``, ``attrs[...] =``, ``attrs.update({...})``, ``*_ATTR``
  constants) is named in docs/file-formats.md.
- Every ``docs/<file>.md`` reference in the code, tests and benchmarks names an
  existing file and, where it quotes a section (``docs/x.md, 'Heading'``), an
  existing heading; no reference to the old out-of-repository sketch remains.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from calib.geometry import HeadPosition
from calib.store import measurement as measurement_store
from calib.store.calibration import AreaBank, Calibration, write_calibration

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FILE_FORMATS = DOCS / "file-formats.md"
REFERENCE = re.compile(r"docs/([\w.-]+\.md)(?:\s*,\s*['\"]([^'\"]+)['\"])?")
HEADING = re.compile(r"^(#+)\s+(.*?)\s*$")
TABLE_PATH = re.compile(r"^\|\s*`(/[^`]*)`")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every Markdown heading outside code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            out.append((len(m.group(1)), m.group(2)))
    return out


def section(text: str, title: str) -> str:
    """The text under heading ``title`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if m and m.group(2) == title:
            level = len(m.group(1))
            end = next((j for j in range(i + 1, len(lines))
                        if (n := HEADING.match(lines[j])) and len(n.group(1)) <= level), len(lines))
            return "\n".join(lines[i:end])
    raise AssertionError(f"{FILE_FORMATS}: no heading {title!r}")


def code_tokens(text: str) -> set[str]:
    """Every name inside backticks, split at path separators, commas, brackets and spaces."""
    spans = re.findall(r"`([^`]+)`", text)
    return {t for span in spans for t in re.split(r"[/\s,=\[\]()\"]+", span) if t}


def hdf5_names(path: Path) -> tuple[set[str], set[str]]:
    """Object paths (without the leading /) and attribute names of an HDF5 file."""
    objects: set[str] = set()
    with h5py.File(path, "r") as f:
        attributes = set(f.attrs)
        f.visititems(lambda name, obj: objects.add(name) or attributes.update(obj.attrs) or None)
    return objects, attributes


def documented_paths(text: str, groups: tuple[str, ...] = ()) -> set[str]:
    """Plain paths in the first column of the section's tables, ``<group>`` expanded."""
    out = set()
    for line in text.splitlines():
        m = TABLE_PATH.match(line)
        if not m or " attrs" in m.group(1) or m.group(1) == "/":
            continue
        for group in groups or ("",):
            p = m.group(1).replace("<group>", group)
            if "<" not in p:
                out.add(p.strip("/"))
    return out


def assert_documented(names: set[str], tokens: set[str], what: str) -> None:
    missing = sorted(n for n in names if n not in tokens)
    assert not missing, f"{FILE_FORMATS}: {what} not documented: {missing}"


@pytest.fixture(scope="module")
def formats() -> str:
    return FILE_FORMATS.read_text(encoding="utf-8")


def test_measurement_file_is_documented(tmp_path: Path, formats: str) -> None:
    path = tmp_path / "m.h5"
    n_s, ir_length = 2, 8
    measurement_store.create_measurement(
        path, serial="SN1", stage="characterize", sample_rate=48000, rig="sim", simulated=True,
        procedure_text="x = 1", procedure_sha256="0" * 64, sources=["a", "b"], azimuth_deg=np.array([0.0, 90.0]),
        receivers=["mic"], positions=[HeadPosition("centre", (1.0, 0.0, 0.0), 180.0)],
        ir_length=ir_length, band_centre_hz=[100.0, 125.0], noise_unit={"binaural": "dB SPL"},
    )
    for group, steps, receivers in (("directivity", 2, 1), ("binaural", 1, 2)):
        quality = measurement_store.StepQuality(np.zeros((receivers, n_s)), np.zeros((receivers, n_s)),
                                                np.zeros(receivers), np.zeros(n_s, int),
                                                thd_band_percent=np.zeros((receivers, n_s, 2)),
                                                noise_band_db=np.zeros((receivers, n_s, 2)))
        for i in range(steps):
            measurement_store.write_step(path, group, i, np.zeros((receivers, n_s, ir_length)), quality)
    measurement_store.mark_complete(path)
    objects, attributes = hdf5_names(path)
    text = section(formats, "Measurement file")
    tokens = code_tokens(text)
    assert_documented({part for name in objects for part in name.split("/")}, tokens, "measurement objects")
    assert_documented(attributes, tokens, "measurement attributes")
    listed = documented_paths(text, measurement_store.GROUPS)
    written_later = {p for p in listed if p.startswith("reflections")}  # by the stage, after the last step
    assert listed - written_later - objects == set(), "documented but not written"
    assert len(listed - written_later) >= 17  # the table was found and parsed


def test_calibration_file_is_documented(tmp_path: Path, formats: str) -> None:
    n_s, taps = 2, 4
    cal = Calibration(
        serial="SN1", product_id="p", sample_rate=48000, drivers=["a", "b"], output_channels=[1, 2],
        fir=np.zeros((3, n_s, taps)), virtualizer=np.zeros((2, 2, 2)), modeling_delay_s=0.008,
        measurement_sha256="1" * 64, procedure_sha256="2" * 64, procedure_text="x = 1",
        predicted={"m": np.zeros(2)}, predicted_attrs={"m": {}},
        area=AreaBank(np.zeros((1, 2, n_s, taps)), np.zeros((1, 3)), np.zeros(1), (0.1, 0.1, 5.0)),
    )
    path = write_calibration(tmp_path / "c.h5", cal)
    objects, attributes = hdf5_names(path)
    text = section(formats, "Calibration file")
    tokens = code_tokens(text)
    own = {name for name in objects if not name.startswith("predicted/")}  # names chosen by the fit
    assert_documented({part for name in own for part in name.split("/")}, tokens, "calibration objects")
    assert_documented(attributes, tokens, "calibration attributes")
    listed = documented_paths(text)
    assert listed - objects == set(), "documented but not written"
    assert len(listed) >= 9


def _constant_names(tree: ast.AST) -> set[str]:
    """HDF5 names written with constant strings in one module."""
    names: set[str] = set()

    def const(node: ast.AST) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("create_dataset", "create_group") and node.args and const(node.args[0]):
                names.update(const(node.args[0]).split("/"))
            owner = node.func.value
            if (node.func.attr == "update" and isinstance(owner, ast.Attribute) and owner.attr == "attrs"
                    and node.args and isinstance(node.args[0], ast.Dict)):
                names.update(k for k in map(const, node.args[0].keys) if k)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and const(target.slice) and (
                        (isinstance(target.value, ast.Attribute) and target.value.attr == "attrs")
                        or (isinstance(target.value, ast.Name) and target.value.id == "attrs")):
                    names.add(const(target.slice))
                if isinstance(target, ast.Name) and target.id.endswith("_ATTR") and const(node.value):
                    names.add(const(node.value))
    return names - {""}


def test_every_constant_hdf5_name_in_the_package_is_documented(formats: str) -> None:
    names = set()
    for module in (ROOT / "calib").rglob("*.py"):
        names |= _constant_names(ast.parse(module.read_text(encoding="utf-8")))
    assert {"direct_s", "custody_seal", "speed_of_sound_m_s", "station_time_clock"} <= names  # the scan sees them
    assert_documented(names, code_tokens(formats), "HDF5 names")


def _references() -> list[tuple[Path, int, str, str | None]]:
    found = []
    for folder in ("calib", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                assert "DESIGN.md" not in line, f"{path}:{number}: refers to the old design sketch: {line.strip()}"
                found += [(path, number, m.group(1), m.group(2)) for m in REFERENCE.finditer(line)]
    return found


def test_docs_references_point_to_existing_files_and_headings() -> None:
    refs = _references()
    assert len(refs) >= 9  # the repointed design references at least
    for path, number, name, title in refs:
        doc = DOCS / name
        assert doc.is_file(), f"{path}:{number}: docs/{name} does not exist"
        if title is not None:
            titles = [t for _, t in headings(doc.read_text(encoding="utf-8"))]
            assert title in titles, f"{path}:{number}: docs/{name} has no heading {title!r}; it has {titles}"


def test_docs_links_resolve() -> None:
    """Relative links between the documents (and from the README) name existing files and anchors."""
    def anchor(title: str) -> str:  # GitHub's heading anchors
        return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")

    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target, fragment in re.findall(r"\]\(([\w./-]+\.md)(?:#([\w-]+))?\)", page.read_text(encoding="utf-8")):
            doc = (page.parent / target).resolve()
            assert doc.is_file(), f"{page}: link to missing {target}"
            if fragment:
                anchors = {anchor(t) for _, t in headings(doc.read_text(encoding="utf-8"))}
                assert fragment in anchors, f"{page}: {target}#{fragment}: no such heading"
