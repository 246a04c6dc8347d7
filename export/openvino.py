"""ONNX -> OpenVINO IR (``model.xml`` + ``model.bin``) with the manifest in ``rt_info``; int8 through NNCF.

- ``fp32``: the graph as converted, float32 weights.
- ``bf16``: the same float32 IR, marked ``precision: bf16`` in its manifest, so that the OpenVINO
  backend compiles it with the bfloat16 inference hint (where the CPU has AVX-512 BF16 or AMX).
- ``int8``: NNCF post-training quantisation (min/max statistics and fast bias correction), calibrated
  on real frames: a folder of images, or a ``deblur synth`` dataset (its blurred images). Each frame goes
  through :class:`sdk.processing.FrameConverter`, exactly what the runtime feeds the network.

Needs ``openvino`` (and ``nncf`` for int8), not PyTorch: ``pip install 'deblur-sdk[openvino]'``.

Example::

    >>> export_openvino("model.onnx", "model.xml", precision="int8", calibration="synth_out", max_frames=64)
    OpenVINOExport(path=PosixPath('model.xml'), precision='int8', frames=64, ...)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdk.extras import missing_extra
from sdk.files import IMAGE_SUFFIXES, atomic_write
from sdk.manifest import ONNX_METADATA_KEY, Manifest

PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_CALIBRATION_FRAMES = 100


@dataclass(frozen=True)
class OpenVINOExport:
    path: Path
    precision: str
    frames: int
    seconds: float
    manifest: Manifest

    def format(self) -> str:
        calibrated = f", calibrated on {self.frames} frames" if self.frames else ""
        return (f"wrote {self.path} (+ {self.path.with_suffix('.bin').name}): OpenVINO IR, {self.precision}"
                f"{calibrated}, {self.seconds:.1f} s\n  manifest: {self.manifest.summary()}")


def calibration_files(source: str | os.PathLike[str], max_frames: int = DEFAULT_CALIBRATION_FRAMES) -> list[Path]:
    """Up to ``max_frames`` images from ``source`` spread evenly over it (sorted, so runs repeat).

    ``source`` is a folder of images (searched recursively) or a ``deblur synth``/GoPro dataset, of
    which only the blurred inputs (``*/blur/*``) are used: the network's real input, not its target.
    """
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"calibration frames: {root} is not a folder of images or a `deblur synth` dataset")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    blurred = [p for p in images if p.parent.name == "blur"]
    chosen = blurred or [p for p in images if p.parent.name != "sharp"]
    if not chosen:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root} to calibrate int8 on")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if len(chosen) > max_frames:
        index = np.linspace(0, len(chosen) - 1, max_frames).round().astype(int)
        chosen = [chosen[i] for i in index]
    return chosen


def model_inputs(files: list[Path], manifest: Manifest) -> Iterator[np.ndarray]:
    """Each image as the network sees it at run time: (1, C, H, W) float32, padded to the pad multiple."""
    import cv2

    from sdk.processing import FrameConverter, inspect_frame, padded_size

    converter = FrameConverter(manifest, color="bgr")
    for path in files:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"calibration frame {path} is not a readable image")
        spec = inspect_frame(frame, color="bgr")
        hw = padded_size(spec.height, spec.width, manifest.pad_multiple)
        planes = np.empty(converter.planes_shape(spec, hw), np.float32)
        yield converter.to_model(frame, spec, planes)[None]


def export_openvino(onnx_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                    precision: str = "fp32", calibration: str | os.PathLike[str] | None = None,
                    max_frames: int = DEFAULT_CALIBRATION_FRAMES) -> OpenVINOExport:
    """Convert an exported ONNX (with its manifest) to an OpenVINO IR at ``out_path`` (``.xml``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "int8" and calibration is None:
        raise ValueError("int8 needs calibration frames: a folder of images or a `deblur synth` dataset "
                         "(--calibration DIR)")
    out = Path(out_path)
    if out.suffix.lower() != ".xml":
        raise ValueError(f"an OpenVINO IR is written as NAME.xml (+ NAME.bin), got {out}")
    try:
        import openvino as ov
    except ImportError as exc:
        raise missing_extra("`deblur export --to openvino`", "openvino", exc) from None
    start = time.perf_counter()
    source = Path(onnx_path)
    manifest = Manifest.read_onnx(source)
    model = ov.convert_model(str(source))
    frames = 0
    if precision == "int8":
        model, frames = _quantize(model, manifest, calibration_files(calibration, max_frames))  # type: ignore[arg-type]
    manifest = manifest.replace(precision=precision, toolchain={**manifest.toolchain,
                                                                "openvino": ov.__version__.split("-")[0]})
    model.set_rt_info(manifest.to_json(), [ONNX_METADATA_KEY])
    # The .bin first, then the .xml that names it: a reader never finds an .xml whose weights are missing.
    # (contexts close last-first, so the .bin is renamed into place before the .xml)
    with atomic_write(out) as tmp_xml, atomic_write(out.with_suffix(".bin")) as tmp_bin:
        staged = tmp_xml.with_suffix(".xml")
        ov.save_model(model, str(staged), compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), tmp_bin)
        os.replace(staged, tmp_xml)
    return OpenVINOExport(out, precision, frames, time.perf_counter() - start, manifest)


def _quantize(model: Any, manifest: Manifest, files: list[Path]) -> tuple[Any, int]:
    try:
        import nncf
    except ImportError as exc:
        raise missing_extra("int8 export (NNCF)", "openvino", exc) from None
    inputs = list(model_inputs(files, manifest))
    dataset = nncf.Dataset(inputs)
    quantized = nncf.quantize(model, dataset, subset_size=len(inputs), fast_bias_correction=True)
    return quantized, len(inputs)
