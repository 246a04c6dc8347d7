"""The runtime must import without PyTorch: a robot running an engine should not need it."""

from __future__ import annotations

import subprocess
import sys

from tests_paths import REPO


def test_import_sdk_does_not_import_torch():
    code = "import sys, sdk, sdk.cli; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_deblur_help_works_without_importing_torch():
    code = ("import sys; from sdk.cli import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
