"""The PyTorch backend on a real checkpoint, and ``process`` in a virtualenv that has no PyTorch at all."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import numpy as np
import pytest

import sdk


def _training():
    try:
        import torch

        from training.checkpoint import save_checkpoint
        from training.models import build
        from training.models.padding import forward_padded
    except ImportError as exc:
        pytest.skip(f"the PyTorch backend needs torch and the training package: {exc}")
    return torch, build, save_checkpoint, forward_padded


@pytest.mark.slow
def test_checkpoint_runs_through_the_torch_backend_like_the_model_itself(tmp_path):
    torch, build, save_checkpoint, forward_padded = _training()
    torch.manual_seed(0)
    net = build("rdafnet-nano", base_channels=8, num_blocks=1).eval()
    path = save_checkpoint(tmp_path / "tiny.pt", net)
    deblur = sdk.Deblurrer(path, device="cpu")
    info = deblur.info
    assert (info.backend, info.device, info.precision, info.manifest_source) == ("torch", "cpu", "fp32", "checkpoint")
    assert info.manifest.variant == "rdafnet-nano"

    frame = np.random.default_rng(0).integers(0, 256, (29, 35, 3), dtype=np.uint8)
    out = deblur.process(frame)
    # The same frame by hand: BGR -> RGB, [0, 255] -> the model's range, padded, run, and back.
    lo, hi = net.input_range
    x = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255 * (hi - lo) + lo
    with torch.no_grad():
        y = forward_padded(net, x, net.pad_multiple)[0].permute(1, 2, 0).numpy()
    expected = np.clip(np.round((y - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)[..., ::-1]
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_fp16_torch_backend_needs_cuda(tmp_path):
    torch, build, save_checkpoint, _ = _training()
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = save_checkpoint(tmp_path / "tiny.pt", build("rdafnet-nano", base_channels=8, num_blocks=1))
    with pytest.raises(ValueError, match="fp16 with the torch backend needs a CUDA device"):
        sdk.Deblurrer(path, device="cpu", precision="fp16")


RUNTIME_ONLY_SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import sdk
    assert importlib.util.find_spec("torch") is None, "torch is installed in the runtime-only venv"
    deblur = sdk.Deblurrer(sys.argv[1], device="cpu")
    frame = (np.arange(45 * 61 * 3) % 256).astype(np.uint8).reshape(45, 61, 3)
    out = deblur.process(frame)
    assert "torch" not in sys.modules
    print(json.dumps({"shape": list(out.shape), "dtype": str(out.dtype), "sum": int(out.astype(np.int64).sum()),
                      "backend": deblur.info.backend}))
""")


def test_process_runs_in_a_torch_free_virtualenv(onnx_models, tmp_path):
    python = os.environ.get("DEBLUR_RUNTIME_PYTHON")
    if not python:
        pytest.skip("DEBLUR_RUNTIME_PYTHON is unset: .ci/run sets it to the python of a runtime-only "
                    "(pip install .) virtualenv")
    script = tmp_path / "runtime_only.py"
    script.write_text(RUNTIME_ONLY_SCRIPT)
    repo = os.path.dirname(os.path.dirname(sdk.__file__))
    # The working tree's sdk (not a stale installed copy), in an interpreter that has no torch.
    env = {**os.environ, "PYTHONPATH": repo}
    result = subprocess.run([python, str(script), str(onnx_models["affine"])], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    frame = (np.arange(45 * 61 * 3) % 256).astype(np.uint8).reshape(45, 61, 3)
    from sdk_onnx_models import affine_uint8

    assert report == {"shape": [45, 61, 3], "dtype": "uint8", "backend": "onnxruntime",
                      "sum": int(affine_uint8(frame, 0.5, 0.25).astype(np.int64).sum())}
