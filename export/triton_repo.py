"""A Triton Inference Server model repository from an ONNX model or a TensorRT plan.

``deblur export MODEL --to triton-repo --out DIR`` writes::

    DIR/
      README.md                 how to serve it (tritonserver / NVIDIA's container) and call it
      <name>/
        config.pbtxt            platform, max batch, dynamic batching, dims -1 for H/W, instance group,
                                optimisation profile (ONNX: TensorRT execution accelerator; plan: profile 0)
        1/model.onnx            or 1/model.plan
        1/model.onnx.json       the manifest beside it (the SDK's sidecar): value range, colour order, ...

The repository serves the network itself: float32 NCHW tensors in the model's value range. Clients
do the pre/post-processing (:mod:`sdk.processing`); ``deblur serve`` instead takes uint8 frames and
runs it on the server.

Example::

    >>> write_triton_repo("rdafnet-nano.onnx", "repo", TritonRepoOptions(max_batch=8, instances=2))
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sdk.manifest import Manifest, ShapeProfile

PLATFORMS = {".onnx": "onnxruntime_onnx", ".plan": "tensorrt_plan", ".engine": "tensorrt_plan"}
KINDS = ("gpu", "cpu")
DEFAULT_PROFILE = ShapeProfile(min=(1, 256, 256), opt=(1, 720, 1280), max=(1, 1088, 1920))
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:<yy.mm>-py3"
# ONNX element types -> Triton's (only the ones an image network's input or output can have).
_ORT_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(bfloat16)": "TYPE_BF16"}


@dataclass(frozen=True)
class TritonRepoOptions:
    """How Triton should run the model; see ``deblur export --help``."""

    name: str = "deblur"
    max_batch: int = 8
    instances: int = 1
    kind: str = "gpu"                    # "gpu" (KIND_GPU) or "cpu" (KIND_CPU)
    queue_delay_us: int = 500
    fp16: bool = False                   # ONNX on GPU: TensorRT accelerator in FP16
    profile: ShapeProfile = field(default_factory=lambda: DEFAULT_PROFILE)   # H/W range; batch comes from max_batch

    def validate(self) -> None:
        if not self.name or not all(c.isalnum() or c in "._-" for c in self.name):
            raise ValueError(f"model name must be letters, digits, '.', '_' or '-', got {self.name!r}")
        if self.max_batch < 1 or self.instances < 1 or self.queue_delay_us < 0:
            raise ValueError(f"need max_batch >= 1, instances >= 1, queue_delay_us >= 0; got {self.max_batch}, "
                             f"{self.instances}, {self.queue_delay_us}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str
    channels: int


@dataclass(frozen=True)
class TritonRepo:
    root: Path
    config: Path
    model: Path
    manifest: Path
    readme: Path

    def format(self) -> str:
        return (f"Triton model repository: {self.root}\n  {self.config}\n  {self.model}\n  {self.manifest}\n"
                f"Serve it (not run here): tritonserver --model-repository {self.root.resolve()}  "
                f"(see {self.readme} for NVIDIA's container)")


def read_io(model: Path, manifest: Manifest) -> tuple[TensorSpec, TensorSpec, bool]:
    """Input and final-output specs, and whether the batch axis is dynamic.

    ONNX: read from the graph (ONNX Runtime). A plan cannot be read without TensorRT: its tensors are
    the manifest's, float32 (the SDK's builder keeps float32 I/O even for float16 engines).
    """
    if model.suffix != ".onnx":
        profile = manifest.shape_profile
        dynamic = profile is None or profile.max[0] > 1
        return (TensorSpec(manifest.input_name, "TYPE_FP32", manifest.in_channels),
                TensorSpec(manifest.final_output, "TYPE_FP32", manifest.in_channels), dynamic)
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if manifest.input_name not in inputs or manifest.final_output not in outputs:
        raise ValueError(f"{model}: the manifest names input {manifest.input_name!r} and output "
                         f"{manifest.final_output!r}, the graph has {sorted(inputs)} -> {sorted(outputs)}")
    specs = []
    for arg in (inputs[manifest.input_name], outputs[manifest.final_output]):
        if arg.type not in _ORT_TYPES or len(arg.shape) != 4 or not isinstance(arg.shape[1], int):
            raise ValueError(f"{model}: {arg.name} is {arg.type} {arg.shape}; a model repository needs "
                             "float NCHW with a fixed channel count")
        specs.append(TensorSpec(arg.name, _ORT_TYPES[arg.type], int(arg.shape[1])))
    batch = inputs[manifest.input_name].shape[0]
    return specs[0], specs[1], not isinstance(batch, int)


def config_pbtxt(platform: str, inp: TensorSpec, out: TensorSpec, options: TritonRepoOptions,
                 max_batch: int) -> str:
    """The model configuration, in protobuf text format (Triton's ``ModelConfig``)."""
    p = options.profile
    preferred = sorted({b for b in (max(1, max_batch // 2), max_batch) if b > 1})
    lines = [
        f'name: "{options.name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {max_batch}",
        "input [",
        f'  {{ name: "{inp.name}" data_type: {inp.data_type} dims: [ {inp.channels}, -1, -1 ] }}',
        "]",
        "output [",
        f'  {{ name: "{out.name}" data_type: {out.data_type} dims: [ {out.channels}, -1, -1 ] }}',
        "]",
        "# Requests of one frame size are batched; different sizes never share a batch.",
        "dynamic_batching {",
        *([f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]"] if preferred else []),
        f"  max_queue_delay_microseconds: {options.queue_delay_us}",
        "}",
        "instance_group [",
        f"  {{ count: {options.instances} kind: KIND_{options.kind.upper()}"
        + (' profile: [ "0" ]' if platform == "tensorrt_plan" and options.kind == "gpu" else "") + " }",
        "]",
    ]
    if platform == "onnxruntime_onnx" and options.kind == "gpu":
        def shapes(n: int, hw: tuple[int, int, int]) -> str:
            return f"{inp.name}:{n}x{inp.channels}x{hw[1]}x{hw[2]}"
        params = [("precision_mode", "FP16" if options.fp16 else "FP32"),
                  ("trt_profile_min_shapes", shapes(1, p.min)),
                  ("trt_profile_opt_shapes", shapes(max(1, max_batch // 2), p.opt)),
                  ("trt_profile_max_shapes", shapes(max_batch, p.max)),
                  ("trt_engine_cache_enable", "1"),
                  ("trt_engine_cache_path", f"/tmp/triton_trt_cache/{options.name}")]
        lines += [
            "# ONNX Runtime's TensorRT execution provider builds its engine for this profile (N x C x H x W)",
            "# and caches it across restarts.",
            "optimization { execution_accelerators {",
            "  gpu_execution_accelerator: [ {",
            '    name: "tensorrt"',
            *[f'    parameters {{ key: "{k}" value: "{v}" }}' for k, v in params],
            "  } ]",
            "} }",
        ]
    return "\n".join(lines) + "\n"


def readme(root: Path, options: TritonRepoOptions, platform: str, manifest: Manifest) -> str:
    lo, hi = manifest.value_range
    return f"""# Triton model repository: `{options.name}`

Written by `deblur export --to triton-repo` for {manifest.architecture} / {manifest.variant}
({platform}). The export did not run Triton: serve the repository on a machine that has it.

## Serve

```
tritonserver --model-repository {root.resolve()}
```

or in NVIDIA's Triton container (pick the release whose TensorRT built the plan, if it is one;
`<yy.mm>` e.g. 24.08):

```
docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
  -v {root.resolve()}:/models {TRITON_IMAGE} tritonserver --model-repository=/models
```

## Call

Input `{manifest.input_name}` and output `{manifest.final_output}` are float NCHW ({manifest.color_order},
values in [{lo:g}, {hi:g}], residual `{manifest.residual}`, height and width multiples of
{manifest.pad_multiple}); `{options.name}/1/*.json` is the manifest that says so. Frames of one size
are batched up to {options.max_batch}. For uint8 camera frames with the SDK's pre/post-processing on
the server, use `deblur serve` and `sdk.RemoteDeblurrer` instead.
"""


def write_triton_repo(model: str | Path, root: str | Path, options: TritonRepoOptions | None = None) -> TritonRepo:
    """Write ``root/<name>/`` (config, model, manifest) and ``root/README.md``; see the module docstring."""
    options = options or TritonRepoOptions()
    options.validate()
    model, root = Path(model), Path(root)
    platform = PLATFORMS.get(model.suffix.lower())
    if platform is None:
        raise ValueError(f"{model}: a Triton repository takes an .onnx model or a TensorRT .plan/.engine")
    if not model.is_file():
        raise FileNotFoundError(f"model not found: {model}")
    plan: bytes | None = None
    if platform == "onnxruntime_onnx":
        manifest = Manifest.read_onnx(model)
    else:
        # Triton loads the bare plan: the SDK's engine header (its manifest) goes into the sidecar instead.
        from sdk.backends.engine_file import load_engine

        found, _, plan = load_engine(model)
        if found is None:
            raise ValueError(f"{model} has no manifest (engine header or {model.name}.json sidecar); "
                             "build it with `deblur export --to engine`")
        manifest = found
    inp, out, dynamic = read_io(model, manifest)
    if not dynamic:
        raise ValueError(f"{model} has a fixed batch axis: Triton's dynamic batcher needs a dynamic one "
                         "(`deblur export` writes ONNX with a dynamic batch)")
    max_batch = options.max_batch
    if platform == "tensorrt_plan" and manifest.shape_profile is not None:
        max_batch = min(max_batch, manifest.shape_profile.max[0])   # the engine's profile is fixed
    model_dir = root / options.name
    version = model_dir / "1"
    if model_dir.exists():
        shutil.rmtree(model_dir)       # a stale model.onnx beside a new model.plan would confuse Triton
    version.mkdir(parents=True)
    target = version / ("model.onnx" if platform == "onnxruntime_onnx" else "model.plan")
    if plan is None:
        shutil.copyfile(model, target)
    else:
        target.write_bytes(plan)
    sidecar = manifest.write_sidecar(target)
    config = model_dir / "config.pbtxt"
    config.write_text(config_pbtxt(platform, inp, out, options, max_batch), encoding="utf-8")
    notes = root / "README.md"
    notes.write_text(readme(root, options, platform, manifest), encoding="utf-8")
    return TritonRepo(root, config, target, sidecar, notes)


# --------------------------------------------------------------------------- `deblur export --to triton-repo`
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options only ``--to triton-repo`` reads (``--out``, ``--shapes`` and ``--fp16`` are shared)."""
    group = parser.add_argument_group("--to triton-repo (--out DIR is the repository)")
    group.add_argument("--name", default="deblur", help="the model's name in the repository (default deblur)")
    group.add_argument("--max-batch", type=int, default=8, help="Triton max_batch_size (default 8)")
    group.add_argument("--instances", type=int, default=1, help="model instances per GPU (or CPU) (default 1)")
    group.add_argument("--kind", choices=KINDS, default="gpu", help="instance kind, KIND_GPU or KIND_CPU (default gpu)")


def run_cli(args: argparse.Namespace) -> int:
    """``deblur export SOURCE --to triton-repo --out DIR``: SOURCE an .onnx, a .plan/.engine or a checkpoint."""
    import tempfile

    if args.out is None:
        raise ValueError("--to triton-repo needs --out DIR, the model repository's folder")
    options = TritonRepoOptions(name=args.name, max_batch=args.max_batch, instances=args.instances, kind=args.kind,
                                fp16=args.fp16, profile=ShapeProfile.parse(args.shapes))
    options.validate()
    source = Path(args.source)
    if source.suffix.lower() in PLATFORMS:
        print(write_triton_repo(source, args.out, options).format())
        return 0
    from export.onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / (source.stem + ".onnx")
        report = export_onnx(str(source), onnx_path, opset=args.opset, fp16=args.fp16, strict=False)
        print(report.format())
        if not report.ok:
            print("not writing a model repository from an ONNX that failed verification")
            return 1
        print(write_triton_repo(onnx_path, args.out, options).format())
    return 0 if report.fp16 is None or report.fp16.ok else 1
