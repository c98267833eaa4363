"""Import contract: calib.solve and calib.metrics are pure numpy/scipy (docs/README.md, 'Conventions')."""

import subprocess
import sys

FORBIDDEN = ("h5py", "sounddevice", "matplotlib", "pandas", "serial", "jack")


def test_solver_and_metrics_import_no_io():
    code = (
        "import sys, calib.solve, calib.metrics; "
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
