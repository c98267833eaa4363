"""The ``calib`` command line's output: levels, aligned tables, the exit codes in the help."""

from __future__ import annotations

import pytest

from calib.cli.main import main
from calib.cli.output import check_table, table
from calib.stages.verdict import Check


def test_table_columns_are_as_wide_as_their_content() -> None:
    lines = table([["a", "1.0"], ["a much longer name", "12.5"]], right=(1,), indent="")
    assert lines == ["a                    1.0", "a much longer name  12.5"]
    assert table([]) == []


def test_check_table_aligns_long_position_names() -> None:
    checks = [
        Check("cancellation L @ centre", 21.3, 19.0, "dB", True, detail="worst band 800 Hz"),
        Check("cancellation R @ a_position_with_a_very_long_name_indeed", 12.25, 19.0, "dB", False),
        Check("driver left polarity", 1.0, 1.0, "", True, exact=True),
        Check("filter effort", 14.0, 18.0, "dB", True, upper=True),
    ]
    lines = check_table(checks)
    assert lines[1].startswith("  FAIL  cancellation R @ a_position_with_a_very_long_name_indeed  12.2 dB  (>= 19 dB)")
    assert len({line.rindex("(") for line in lines}) == 1  # the limits start in one column
    assert lines[0].endswith("(>= 19 dB)  [worst band 800 Hz]")
    assert lines[2].endswith("     +1  (== +1)")  # right-aligned under "12.2 dB"
    assert lines[3].endswith("14.0 dB  (<= 18 dB)")
    assert check_table(checks[:1], prefix="predicted ")[0].startswith("  predicted PASS  cancellation L")


def test_help_names_every_exit_code(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code, meaning in (("0", "PASS"), ("1", "FAIL"), ("2", "bad input"), ("130", "interrupted")):
        assert any(line.split()[:1] == [code] and line.split(None, 1)[1].startswith(meaning)
                   for line in out.splitlines()), (code, out)
    assert "--quiet" in out and "--verbose" in out


def test_quiet_and_verbose_together_is_a_usage_error(capsys) -> None:
    assert main(["--quiet", "--verbose", "inspect", "nothing.h5"]) == 2
    err = capsys.readouterr().err
    assert err == "calib: error: --quiet and --verbose: expected at most one of them\n"


@pytest.mark.parametrize("args", [["inspect"], ["render", "--subtype", "PCM_8", "a", "b", "c"]])
def test_click_errors_exit_2(args, capsys) -> None:
    assert main(args) == 2
    assert capsys.readouterr().err.count("\n") == 1
