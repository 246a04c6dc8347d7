"""Local only (not collected by pytest, not run in CI): TensorRT's own ``tensorrt.plugin`` validators on
``kernels/trt_plugins.py``, without TensorRT installed.

``tensorrt.plugin`` is pure Python; its decorators (``register``, ``impl``, ``autotune``, ``aot_impl``)
check each function's signature against the plugin's registration when they run. This script copies the
package out of a TensorRT source checkout into a temporary folder (never into this repository), puts a
stand-in for TensorRT's compiled core beside it (just enough names for the package to import), and calls
:func:`kernels.trt_plugins.register_plugins` once per given checkout, in a fresh interpreter each.

    python tests/kernels/run_trt_plugin_validators.py ~/src/TensorRT            # one release branch checked out
    python tests/kernels/run_trt_plugin_validators.py trt-src/10.6 trt-src/10.9   # several copies of python/

Without a checkout it says so and exits 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path("python/packaging/bindings_wheel/tensorrt/plugin")

CORE = '''
class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        setattr(cls, name, f"{cls.__name__}.{name}")
        return getattr(cls, name)


class _Any(metaclass=_Meta):
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: _Any()


_classes = {}
__version__ = "VERSION"


def get_plugin_registry():
    return _Any()


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name[0].islower():
        return f"dtype.{name}"
    return _classes.setdefault(name, _Meta(name, (_Any,), {}))
'''

REPORT = '''
import sys
from kernels import trt_plugins
from tensorrt.plugin import _lib
ids = trt_plugins.register_plugins(aot=True)
for pid in ids:
    d = _lib.QDP_REGISTRY[pid]
    print(f"  {pid}: inputs {d.input_tensor_names}, attributes {list(d.input_attrs)}, {d.num_outputs} output(s), "
          f"impl {d.impl_func is not None}, autotune {d.autotune_func is not None}, "
          f"aot_impl {getattr(d, 'aot_impl_func', None) is not None}")
'''


def version_of(checkout: Path) -> str:
    """``release/10.9`` -> ``10.9`` from the checkout's include/NvInferVersion.h."""
    header = (checkout / "include" / "NvInferVersion.h").read_text()
    parts = {}
    for key in ("MAJOR", "MINOR"):
        for line in header.splitlines():      # 11.x: NV_TENSORRT_MAJOR names TRT_MAJOR_ENTERPRISE, which holds the number
            words = line.split()
            if len(words) > 2 and words[1] in (f"NV_TENSORRT_{key}", f"TRT_{key}_ENTERPRISE") and words[2].isdigit():
                parts[key] = words[2]
    return f"{parts['MAJOR']}.{parts['MINOR']}"


def run(checkout: Path) -> int:
    version = version_of(checkout)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "tensorrt"
        shutil.copytree(checkout / PACKAGE, package / "plugin")
        core = CORE.replace("VERSION", f"{version}.0")
        # tensorrt.plugin's IS_AOT_ENABLED is hasattr(trt, "QuickPluginCreationRequest"): bound from 10.9 on.
        if "QuickPluginCreationRequest" in (checkout / "python" / "src" / "infer" / "pyPlugin.cpp").read_text():
            core += "\nQuickPluginCreationRequest = __getattr__('QuickPluginCreationRequest')\n"
        (package / "__init__.py").write_text(core)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, str(REPO)])}
        result = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True)
    print(f"TensorRT {version} ({checkout}): {'OK' if result.returncode == 0 else 'FAILED'}")
    print(result.stdout.rstrip() or result.stderr.strip().splitlines()[-1])
    return result.returncode


def main(argv: list[str]) -> int:
    checkouts = [Path(a) for a in argv if (Path(a) / PACKAGE).is_dir()]
    if not checkouts:
        print("no TensorRT checkout with python/packaging/bindings_wheel/tensorrt/plugin given: nothing checked")
        return 0
    return max(run(c) for c in checkouts)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
