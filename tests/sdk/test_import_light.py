"""The runtime must import without PyTorch: a robot running an engine should not need it. And the
manifest is a leaf: training and export reach it without loading OpenCV or the stream machinery."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests_paths import REPO

# Each runs in a fresh interpreter, so that nothing imported by other tests hides an import.
FRESH = {
    "import sdk and its CLI without torch":
        "import sys, sdk, sdk.cli; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)",
    "deblur --help without torch":
        "import sys; from sdk.cli import build_parser; build_parser(); assert 'torch' not in sys.modules",
    "sdk.manifest is a leaf; training.checkpoint loads no cv2":
        "import sys, sdk.manifest; ours = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sdk', 'training', 'export', 'kernels')); assert ours == ['sdk', 'sdk.manifest'], ours; "
        "assert 'numpy' not in sys.modules and 'cv2' not in sys.modules; "
        "import training.checkpoint; assert 'cv2' not in sys.modules, 'training.checkpoint imported cv2'",
    "lazy package names resolve, unknown ones raise":
        "import sdk; assert sdk.Deblurrer.__name__ == 'Deblurrer' and sdk.Manifest.__name__ == 'Manifest'; "
        "assert set(sdk.__all__) <= set(dir(sdk))\n"
        "try:\n    sdk.NoSuchThing\nexcept AttributeError as e:\n    assert 'NoSuchThing' in str(e)\n"
        "else:\n    raise SystemExit('no AttributeError')",
}


@pytest.mark.parametrize("code", FRESH.values(), ids=FRESH.keys())
def test_in_a_fresh_interpreter(code):
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
