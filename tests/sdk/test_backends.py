"""Backend selection: by suffix, execution providers per device, profile checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.backends import DEVICES, backend_for, check_device
from sdk.backends.base import ShapeLimits
from sdk.backends.onnxruntime import select_providers
from sdk.manifest import ShapeProfile

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def names(providers):
    return [p if isinstance(p, str) else p[0] for p in providers]


def test_backend_is_chosen_by_suffix():
    assert backend_for(Path("m.engine")) == backend_for(Path("m.plan")) == "tensorrt"
    assert backend_for(Path("m.onnx"), device="cuda") == "onnxruntime"
    assert backend_for(Path("m.xml")) == "openvino"
    assert backend_for(Path("m.pt")) == backend_for(Path("M.PTH")) == "torch"
    assert backend_for(Path("m.onnx"), "onnxruntime") == "onnxruntime"
    assert backend_for(Path("m.onnx"), "openvino", device="cpu") == "openvino"


def test_device_check_accepts_exactly_what_its_message_lists():
    for device in ("auto", "cpu", "cuda", "cuda:1", "tensorrt", "tensorrt:0"):
        check_device(device)
    for device in ("gpu", "cpu:0", "cuda:x", "tensorrt:", "CUDA"):
        with pytest.raises(ValueError) as info:
            check_device(device)
        message = str(info.value)
        assert message == f"device must be {DEVICES}, got {device!r}"
        assert all(f"'{kind}'" in message for kind in ("auto", "cpu", "cuda", "cuda:N", "tensorrt", "tensorrt:N"))


def test_onnxruntime_providers_per_device():
    assert names(select_providers("auto", ALL, fp16=False)) == ALL
    assert names(select_providers("auto", ["CPUExecutionProvider"], fp16=False)) == ["CPUExecutionProvider"]
    assert names(select_providers("cpu", ALL, fp16=False)) == ["CPUExecutionProvider"]
    cuda = select_providers("cuda:1", ALL, fp16=False)
    assert names(cuda) == ["CUDAExecutionProvider", "CPUExecutionProvider"] and cuda[0][1]["device_id"] == 1
    trt = select_providers("tensorrt", ALL, fp16=True)[0]
    assert trt[0] == "TensorrtExecutionProvider" and trt[1]["trt_fp16_enable"] and trt[1]["trt_engine_cache_enable"]
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        select_providers("cuda", ["CPUExecutionProvider"], fp16=False)


def test_shape_limits_from_a_profile_name_the_range():
    limits = ShapeLimits.from_profile(ShapeProfile(min=(1, 16, 16), opt=(1, 720, 1280), max=(2, 1088, 1920)))
    limits.check((2, 3, 1088, 1920))
    limits.check((1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"1x1090x1920 is outside the model's profile \[1x16x16 \.\. 2x1088x1920\]"):
        limits.check((1, 3, 1090, 1920))
    with pytest.raises(ValueError, match="outside the model's profile"):
        limits.check((3, 3, 64, 64))
    ShapeLimits().check((64, 3, 4096, 4096))      # no profile: anything goes


def test_onnx_float16_model_casts_in_and_out(onnx_models):
    from sdk.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(onnx_models["fp16"], device="cpu", threads=1)
    x = np.linspace(0, 1, 2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    out = np.empty_like(x)
    backend.infer(x, out)
    np.testing.assert_allclose(out, x.astype(np.float16).astype(np.float32))
    with pytest.raises(Exception, match="no float32 fallback"):
        backend.fp32_fallback()


def test_fp16_request_on_cpu_is_reported_honestly(onnx_models):
    import sdk

    with pytest.warns(UserWarning, match="needs ONNX Runtime's TensorRT provider"):
        d = sdk.Deblurrer(onnx_models["identity"], device="cpu", precision="fp16")
    assert d.info.precision == "fp32"
    with pytest.raises(ValueError, match="runs precision fp32, fp16, not 'int4'"):
        sdk.Deblurrer(onnx_models["identity"], backend="onnxruntime", device="cpu", precision="int4")



class _ProviderSession:
    """A real CPU session that reports other providers. With ``copy_at_bind`` its binding copies a host
    input when it is bound, as ONNX Runtime's CUDA/TensorRT providers do (IOBinding::BindInput ->
    CopyOneInputAcrossDevices); the CPU provider only references the host buffer."""

    def __init__(self, real, providers: list[str], copy_at_bind: bool) -> None:
        self.real, self.providers, self.copy_at_bind = real, providers, copy_at_bind
        self.input_binds = 0

    def get_providers(self):
        return self.providers

    def __getattr__(self, name):
        return getattr(self.real, name)

    def io_binding(self):
        session, binding = self, self.real.io_binding()

        class Binding:
            real = binding

            def bind_cpu_input(self, name, array):
                session.input_binds += 1
                self.held = array.copy() if session.copy_at_bind else array
                binding.bind_cpu_input(name, self.held)

            def __getattr__(self, name):
                return getattr(binding, name)

        return Binding()

    def run_with_iobinding(self, binding):
        self.real.run_with_iobinding(binding.real)


@pytest.mark.parametrize("providers, copy_at_bind, binds", [
    (["CUDAExecutionProvider", "CPUExecutionProvider"], True, 3),
    (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], True, 3),
    (["CPUExecutionProvider"], False, 1),          # steady state costs no binding work on CPU
])
def test_every_frame_reaches_the_session_through_a_reused_buffer(onnx_models, monkeypatch, providers,
                                                                 copy_at_bind, binds):
    import onnxruntime as ort

    from sdk.backends.onnxruntime import OnnxRuntimeBackend

    sessions: list[_ProviderSession] = []
    real_session = ort.InferenceSession

    def fake_session(path, sess_options=None, providers=None):
        sessions.append(_ProviderSession(real_session(path, sess_options=sess_options, providers=providers),
                                         active, copy_at_bind))
        return sessions[-1]

    active = providers
    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    backend = OnnxRuntimeBackend(onnx_models["affine"], device="cpu", threads=1)
    batch = np.zeros((1, 3, 8, 8), np.float32)
    out = np.empty_like(batch)
    for level in (0.0, 0.5, 1.0):       # one pooled buffer with new content each frame, as Deblurrer feeds it
        batch.fill(level)
        backend.infer(batch, out)
        np.testing.assert_allclose(out, level * 0.5 + 0.25)
    assert sessions[0].input_binds == binds
