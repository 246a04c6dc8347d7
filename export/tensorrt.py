"""ONNX -> TensorRT engine: optimisation profile, precision, float32 pins, timing cache, engine cache.

**This TensorRT path has not been executed by our CI**: TensorRT cannot be installed there and there
is no GPU. CI type-checks this module against ``tensorrt-stubs`` (``mypy export/tensorrt.py``) and
unit-tests its own logic (profile parsing, cache keys, version gates, the calls a build makes,
error messages) with TensorRT absent; the real build-and-run tests are marked ``trt``.

Version gates (see :func:`plan_build`):

- TensorRT 8.6: networks need ``EXPLICIT_BATCH``; float16 via ``BuilderFlag.FP16`` (weak typing);
  pinned layers get ``layer.precision = float32`` under ``OBEY_PRECISION_CONSTRAINTS``.
- TensorRT 10.0-10.11: the same without ``EXPLICIT_BATCH`` (always explicit).
- TensorRT 10.12+: weak typing is deprecated (``BuilderFlag.FP16``, ``OBEY_PRECISION_CONSTRAINTS``,
  ``ILayer.precision``, ``set_output_type``), so the network is created ``STRONGLY_TYPED`` and float16
  means parsing a float16 ONNX: the graph is converted with float32 islands for the pinned nodes
  (onnxconverter-common's ``convert_float_to_float16`` with ``node_block_list``). Calibrator int8
  stays weakly typed on 10.x, where it still exists.
- TensorRT 11.x: weak typing is gone and every network is strongly typed (the flag is ignored, so
  not set); fp16 as on 10.12+.

Fused-op ONNX (``deblur export --fused``): custom ``deblur`` nodes are TensorRT plugins; the build
registers them (:func:`kernels.trt_plugins.register_plugins`) before parsing, and the operator check
accepts exactly the declared plugin ops on versions that run them (10.6+, AOT nodes 10.9+).

Example::

    >>> options = BuildOptions(precision="fp16", profile=parse_shapes("1x3x256x256:1x3x720x1280:1x3x1088x1920"))
    >>> result = build_engine("rdafnet-nano.onnx", "rdafnet-nano.engine", options)   # + rdafnet-nano.engine.json
    >>> path = ensure_engine("rdafnet-nano.onnx", "~/.cache/deblur/engines", options)  # build once, reuse after
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk.backends.cuda_runtime import gpu_compute_capability
from sdk.backends.engine_file import pack_engine
from sdk.backends.tensorrt import TensorRTUnavailableError, import_tensorrt  # noqa: F401 — part of this module's API
from sdk.manifest import Manifest, ManifestError, ShapeProfile, file_sha256

if TYPE_CHECKING:
    import tensorrt as trt

MIN_VERSION = (8, 6)
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_SHAPES = "1x3x256x256:1x3x720x1280:1x3x1088x1920"
DEFAULT_WORKSPACE_BYTES = 1 << 30
ENGINE_SUFFIX = ".engine"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TensorRTVersionError(RuntimeError):
    """The installed TensorRT is older than this builder supports."""


class EngineBuildError(RuntimeError):
    """Parsing or building failed; the message says where and how to fix it."""


# --------------------------------------------------------------------------- versions
@dataclass(frozen=True, order=True)
class TensorRTVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> TensorRTVersion:
        """``"10.13.0.35"`` -> ``TensorRTVersion(10, 13, 0)``."""
        parts = re.findall(r"\d+", text)
        if len(parts) < 2:
            raise ValueError(f"not a TensorRT version: {text!r} (expected e.g. '10.13.0')")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else 0)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def check_supported(self) -> None:
        if (self.major, self.minor) < MIN_VERSION:
            raise TensorRTVersionError(
                f"TensorRT {self} is too old: this builder supports TensorRT 8.6, 10.x and 11.x "
                "(JetPack 6.x ships 10.3); upgrade TensorRT on the device that builds the engine")

    @property
    def ops_target(self) -> str:
        """Which operator list of ``export/data/trt_onnx_ops.json`` applies: 8.6, 10.3 (10.0-10.3, JetPack 6),
        10.16 (10.4 and later 10.x; ops added within 10.x are warnings there) or 11.1 (11.x)."""
        if self.major < 10:
            return "8.6"
        if self.major == 10:
            return "10.3" if self.minor <= 3 else "10.16"
        return "11.1"


@dataclass(frozen=True)
class BuildPlan:
    """What one build does on one TensorRT version; pure data, so the version gates are testable."""

    explicit_batch_flag: bool          # 8.x: ONNX networks need EXPLICIT_BATCH
    fp16_flag: bool                    # 8.6-10.11 weak typing: BuilderFlag.FP16
    int8_flag: bool                    # 8.6/10.x implicit quantisation with a calibrator
    obey_precision_constraints: bool   # 8.6-10.11: pinned layers must really run in float32
    convert_onnx_to_fp16: bool         # strong typing (10.12+): the ONNX itself carries the precisions
    pin_with_layer_precision: bool     # 8.6-10.11: layer.precision = float32 on pinned layers
    strongly_typed_flag: bool = False  # 10.12+: NetworkDefinitionCreationFlag.STRONGLY_TYPED (11: implied)


STRONG_TYPING_FROM = (10, 12)   # weak typing deprecated in 10.12, removed in 11.0


def plan_build(version: TensorRTVersion, precision: str, fp32_layers: tuple[str, ...] = ()) -> BuildPlan:
    version.check_supported()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if version.major >= 11 and precision == "int8":
        raise EngineBuildError(
            f"int8 on TensorRT {version} needs an explicitly quantised (Q/DQ) ONNX, e.g. from NVIDIA ModelOpt; "
            "TensorRT 11 removed calibrator-based int8. Build fp16 or fp32, or quantise the ONNX first")
    # Calibrator int8 exists only weakly typed; on 10.12+ it is deprecated but still the only way there.
    strongly_typed = version.major >= 11 or ((version.major, version.minor) >= STRONG_TYPING_FROM
                                             and precision != "int8")
    reduced = precision in ("fp16", "int8")
    pins = bool(fp32_layers) and reduced
    return BuildPlan(
        explicit_batch_flag=version.major < 10,
        fp16_flag=reduced and not strongly_typed,
        int8_flag=precision == "int8",
        obey_precision_constraints=pins and not strongly_typed,
        convert_onnx_to_fp16=precision == "fp16" and strongly_typed,
        pin_with_layer_precision=pins and not strongly_typed,
        strongly_typed_flag=strongly_typed and version.major == 10,
    )


def installed_version() -> TensorRTVersion:
    return TensorRTVersion.parse(import_tensorrt().__version__)


def use_device(device: int) -> contextlib.AbstractContextManager[None]:
    """CUDA device ``device`` current on this thread while the builder runs: TensorRT builds (and the
    AOT kernels compile) on the current device. The SDK's one CUDA layer does it (cuda-python or pycuda)."""
    from sdk.backends.cuda_runtime import load_cuda_api

    return load_cuda_api().activate(device)


# --------------------------------------------------------------------------- options
def parse_shapes(spec: str, *, channels: int = 3) -> ShapeProfile:
    """``MIN:OPT:MAX`` in trtexec notation, e.g. ``1x3x256x256:1x3x720x1280:1x3x1088x1920``."""
    try:
        return ShapeProfile.parse(spec, channels=channels)
    except ManifestError as exc:
        raise ValueError(str(exc)) from None


def parse_size(text: str | int) -> int:
    """Bytes from ``"1G"``, ``"512M"``, ``"256MiB"`` or a plain integer."""
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(text)
        if not match:
            raise ValueError(f"not a size: {text!r} (expected e.g. 512M, 1G, 2GiB or bytes)")
        value = int(float(match.group(1)) * 1024 ** "bkmgt".index((match.group(2) or "b").lower()))
    if value <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return value


@dataclass(frozen=True)
class BuildOptions:
    """How to build. ``fp32_layers``: ONNX node names (= TensorRT layer names) kept in float32;
    ``None`` takes them from the ONNX manifest (filled in by the FP16 analysis at export)."""

    precision: str = "fp16"
    profile: ShapeProfile = field(default_factory=lambda: parse_shapes(DEFAULT_SHAPES))
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES
    fp32_layers: tuple[str, ...] | None = None
    optimization_level: int | None = None        # 0..5, TensorRT's default 3
    timing_cache: Path | None = None
    int8_calibrator: Any = None                  # a trt.IInt8Calibrator, 8.6/10.x only
    check_ops: bool = True                       # the static operator check before parsing

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.workspace_bytes <= 0:
            raise ValueError(f"workspace must be positive, got {self.workspace_bytes}")
        if self.optimization_level is not None and not 0 <= self.optimization_level <= 5:
            raise ValueError(f"optimization_level must be 0..5, got {self.optimization_level}")
        if self.precision == "int8" and self.int8_calibrator is None:
            raise ValueError("int8 needs int8_calibrator (a tensorrt.IInt8Calibrator fed with calibration frames)")
        self.profile.validate()


def align_profile(profile: ShapeProfile, pad_multiple: int) -> ShapeProfile:
    """``opt`` and ``max`` H/W rounded up to the model's pad multiple: the runtime pads every frame to a
    multiple, so a 720x1280 frame reaches a pad-32 network as 736x1280 and a profile must admit that."""
    def up(dims: tuple[int, int, int]) -> tuple[int, int, int]:
        n, h, w = dims
        return n, -(-h // pad_multiple) * pad_multiple, -(-w // pad_multiple) * pad_multiple

    return ShapeProfile(min=profile.min, opt=up(profile.opt), max=up(profile.max))


# --------------------------------------------------------------------------- cache keys
def engine_cache_key(onnx_sha256: str, tensorrt_version: str, compute_capability: str, precision: str,
                     profile: ShapeProfile, fp32_layers: tuple[str, ...] = (), channels: int = 3) -> str:
    """A file-name-safe key naming everything an engine depends on: the graph, TensorRT, the GPU,
    the precision, the profile and the float32 pins. Example: ``3f2a9c1b7d4e-trt10.13.0-sm87-fp16-1a2b3c4d5e6f7a8b``."""
    if not _SHA256.match(onnx_sha256):
        raise ValueError(f"onnx_sha256 must be a SHA-256 hex digest, got {onnx_sha256!r}")
    if not re.fullmatch(r"\d+\.\d+", compute_capability):
        raise ValueError(f"compute capability must look like '8.7', got {compute_capability!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    version = str(TensorRTVersion.parse(tensorrt_version))
    payload = json.dumps({"onnx": onnx_sha256, "trt": version, "sm": compute_capability, "precision": precision,
                          "profile": profile.to_spec(channels=channels), "fp32_layers": sorted(fp32_layers)},
                         sort_keys=True)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return f"{onnx_sha256[:12]}-trt{version}-sm{compute_capability.replace('.', '')}-{precision}-{digest}"


@dataclass(frozen=True)
class EngineCache:
    """A folder of engines by :func:`engine_cache_key`, each with its manifest, plus one timing cache
    per (TensorRT version, GPU) shared by every build there."""

    root: Path

    def engine_path(self, key: str) -> Path:
        return self.root / f"{key}{ENGINE_SUFFIX}"

    def timing_cache_path(self, tensorrt_version: str, compute_capability: str) -> Path:
        version = TensorRTVersion.parse(tensorrt_version)
        return self.root / f"timing-trt{version}-sm{compute_capability.replace('.', '')}.cache"

    def lookup(self, key: str) -> Path | None:
        """The cached engine for ``key`` if it and a readable manifest beside it exist."""
        path = self.engine_path(key)
        if not path.is_file():
            return None
        try:
            Manifest.read_sidecar(path)
        except ManifestError:
            return None   # a half-written or foreign entry: rebuild over it
        return path


# --------------------------------------------------------------------------- ONNX helpers (need the onnx package)
def to_float16_onnx(onnx_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                    keep_fp32: tuple[str, ...] = ()) -> Path:
    """A float16 copy of an ONNX graph for strongly typed builds (TensorRT 11): inputs and outputs stay
    float32, nodes named in ``keep_fp32`` stay float32 (casts are inserted around them)."""
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(os.fspath(onnx_path))
    names = {n.name for n in model.graph.node}
    missing = sorted(set(keep_fp32) - names)
    if missing:
        raise EngineBuildError(f"fp32 layers not in {onnx_path}: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=list(keep_fp32),
                                                 disable_shape_infer=False)
    out = Path(out_path)
    onnx.save(converted, os.fspath(out))
    return out


def _static_op_check(onnx_path: Path, version: TensorRTVersion) -> str | None:
    """Operator check before parsing (the deblur plugin ops count as supported where they run);
    ``None`` when the onnx package is absent (runtime-only install)."""
    try:
        from .opcheck import check_tensorrt_compatibility, deblur_plugin_ops
    except ImportError:
        return None
    report = check_tensorrt_compatibility(onnx_path, (version.ops_target,), plugins=deblur_plugin_ops())
    if not report.ok:
        raise EngineBuildError(f"{onnx_path} cannot be parsed by TensorRT {version}:\n{report.format()}")
    return report.format()


def plugin_nodes(onnx_path: Path) -> dict[str, bool]:
    """``{op_type: aot}`` of the fused-op (``deblur`` domain) nodes of an ONNX file; empty for a standard export."""
    try:
        import onnx
    except ImportError:
        # A runtime-only install: a fused export names its plugin namespace in every custom node.
        if b"plugin_namespace" in onnx_path.read_bytes():
            raise EngineBuildError(f"{onnx_path} has TensorRT plugin nodes; building it needs the onnx package "
                                   "(pip install onnx) to find them") from None
        return {}
    from kernels.trt_plugins import NAMESPACE

    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    found: dict[str, bool] = {}
    for node in model.graph.node:
        if node.domain == NAMESPACE:
            aot = any(a.name == "aot" and onnx.helper.get_attribute_value(a) == 1 for a in node.attribute)
            found[node.op_type] = found.get(node.op_type, False) or aot
    return found


def _register_plugins(nodes: dict[str, bool], version: TensorRTVersion) -> list[str]:
    """Register the deblur plugins before parsing: TensorRT's parser looks each custom node up by name
    in the plugin registry and fails on one it does not find. AOT only when a node asks for it."""
    from kernels import trt_plugins

    aot = any(nodes.values())
    if aot and (version.major, version.minor) < trt_plugins.AOT_MIN_VERSION:
        raise EngineBuildError(f"this ONNX asks for the ahead-of-time plugins (aot=1), which need TensorRT >= "
                               f"{'.'.join(map(str, trt_plugins.AOT_MIN_VERSION))}; TensorRT {version} is installed: "
                               "re-export with `deblur export MODEL --to onnx --fused --jit`")
    try:
        return trt_plugins.register_plugins(aot=aot)
    except RuntimeError as exc:
        raise EngineBuildError(f"cannot build the fused-op ONNX: {exc}") from None


# --------------------------------------------------------------------------- the build
@dataclass
class EngineBuildResult:
    engine_path: Path
    manifest: Manifest
    tensorrt_version: str
    seconds: float
    pinned_layers: list[str]
    unmatched_fp32_layers: list[str]
    timing_cache: Path | None
    op_check: str | None = None

    def format(self) -> str:
        lines = [f"TensorRT {self.tensorrt_version} engine: {self.engine_path} "
                 f"({self.engine_path.stat().st_size / 1e6:.1f} MB) built in {self.seconds:.1f} s",
                 f"  {self.manifest.summary()}"]
        if self.pinned_layers:
            lines.append(f"  {len(self.pinned_layers)} layer(s) kept in float32")
        if self.unmatched_fp32_layers:
            lines.append(f"  warning: {len(self.unmatched_fp32_layers)} fp32 layer name(s) not found in the network: "
                         f"{self.unmatched_fp32_layers[:5]}")
        if self.timing_cache:
            lines.append(f"  timing cache: {self.timing_cache}")
        return "\n".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pin_layers(network: trt.INetworkDefinition, names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``layer.precision = float32`` (and float32 outputs) on the named layers; returns (pinned, unmatched)."""
    import tensorrt as trt

    wanted = set(names)
    pinned = []
    for i in range(network.num_layers):
        layer: trt.ILayer = network.get_layer(i)
        if layer.name not in wanted:
            continue
        float_outputs = [j for j in range(layer.num_outputs)
                         if layer.get_output(j).dtype in (trt.float32, trt.float16)]
        if not float_outputs:
            continue   # shape arithmetic: integer tensors, nothing to pin
        layer.precision = trt.float32
        for j in float_outputs:
            layer.set_output_type(j, trt.float32)
        pinned.append(layer.name)
    return pinned, sorted(wanted - set(pinned))


def _parse_errors(parser: trt.OnnxParser) -> str:
    return "\n".join(f"  {parser.get_error(i)}" for i in range(parser.num_errors))


def build_engine(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str],
                 options: BuildOptions | None = None, *, manifest: Manifest | None = None,
                 device: int = 0) -> EngineBuildResult:
    """Build ``engine_path`` from ``onnx_path`` and write its manifest beside it (``<engine>.json``).

    ``manifest`` defaults to the one in the ONNX metadata. The timing cache in ``options`` is read
    before and written after the build, so repeated builds on one GPU reuse its measurements.
    """
    trt_module = import_tensorrt()
    import tensorrt as trt

    options = options or BuildOptions()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {onnx_path}")
    manifest = manifest or Manifest.read_onnx(onnx_path)
    options.validate()
    profile_shapes = align_profile(options.profile, manifest.pad_multiple)
    fp32_layers = tuple(manifest.fp32_layers if options.fp32_layers is None else options.fp32_layers)
    version = TensorRTVersion.parse(trt_module.__version__)
    plan = plan_build(version, options.precision, fp32_layers)
    compute_capability, gpu_name = gpu_compute_capability(device)
    op_check = _static_op_check(onnx_path, version) if options.check_ops else None
    fused = plugin_nodes(onnx_path)
    plugins = _register_plugins(fused, version) if fused else []
    start = time.perf_counter()

    with use_device(device):     # the builder (and the AOT kernels' compile) work on the current device
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 0
        if plan.explicit_batch_flag:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        if plan.strongly_typed_flag:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network: trt.INetworkDefinition = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        with tempfile.TemporaryDirectory() as tmp:
            source = onnx_path
            if plan.convert_onnx_to_fp16:
                source = to_float16_onnx(onnx_path, Path(tmp) / "fp16.onnx", fp32_layers)
            if not parser.parse_from_file(str(source)):
                raise EngineBuildError(f"TensorRT {version} could not parse {onnx_path}:\n{_parse_errors(parser)}")

        config: trt.IBuilderConfig = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
        if options.optimization_level is not None:
            config.builder_optimization_level = options.optimization_level
        if plan.fp16_flag:
            config.set_flag(trt.BuilderFlag.FP16)
        if plan.int8_flag:
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = options.int8_calibrator
        pinned: list[str] = []
        unmatched: list[str] = []
        if plan.pin_with_layer_precision:
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            pinned, unmatched = _pin_layers(network, fp32_layers)
        elif plan.convert_onnx_to_fp16:
            pinned = list(fp32_layers)

        if network.num_inputs != 1:
            raise EngineBuildError(f"{onnx_path} has {network.num_inputs} inputs; a deblurring graph has one ({manifest.input_name!r})")
        input_name = network.get_input(0).name
        channels = manifest.in_channels
        profile: trt.IOptimizationProfile = builder.create_optimization_profile()
        (n0, h0, w0), (n1, h1, w1), (n2, h2, w2) = profile_shapes.min, profile_shapes.opt, profile_shapes.max
        profile.set_shape(input_name, trt.Dims([n0, channels, h0, w0]), trt.Dims([n1, channels, h1, w1]),
                          trt.Dims([n2, channels, h2, w2]))
        config.add_optimization_profile(profile)

        if options.timing_cache is not None:
            previous = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
            cache = config.create_timing_cache(previous)
            # A cache from another GPU or TensorRT is refused rather than trusted (its timings would mislead).
            if not config.set_timing_cache(cache, ignore_mismatch=False):
                cache = config.create_timing_cache(b"")
                config.set_timing_cache(cache, ignore_mismatch=False)

        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(
                f"TensorRT {version} could not build {onnx_path} (precision {options.precision}, profile "
                f"{profile_shapes.to_spec(channels=channels)}); the log above names the layer. A smaller max shape "
                "or a larger --workspace often helps")
        if options.timing_cache is not None:
            _write_atomic(options.timing_cache, bytes(config.get_timing_cache().serialize()))

        toolchain = dict(manifest.toolchain)
        toolchain.update(tensorrt=str(version), compute_capability=compute_capability, gpu=gpu_name)
        if fused:
            # The runtime must register the plugins before deserialising (JIT ones run Python kernels).
            toolchain["trt_plugins"] = " ".join(f"{p}({'aot' if fused[p.split('::')[-1]] else 'jit'})"
                                                for p in plugins if p.split("::")[-1] in fused)
        engine_manifest = manifest.replace(precision=options.precision, shape_profile=profile_shapes,
                                           fp32_layers=tuple(pinned), onnx_sha256=file_sha256(onnx_path),
                                           toolchain=toolchain)
        # The manifest travels inside the engine file (sdk.backends.engine_file); the sidecar stays for tools.
        _write_atomic(engine_path, pack_engine(bytes(serialized), engine_manifest))
        engine_manifest.write_sidecar(engine_path)
        return EngineBuildResult(engine_path=engine_path, manifest=engine_manifest, tensorrt_version=str(version),
                                 seconds=time.perf_counter() - start, pinned_layers=pinned, unmatched_fp32_layers=unmatched,
                                 timing_cache=options.timing_cache, op_check=op_check)


def ensure_engine(onnx_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
                  options: BuildOptions | None = None, *, device: int = 0) -> Path:
    """The engine for this ONNX, TensorRT, GPU, precision and profile: from ``cache_dir`` when built
    before, else built now (with the cache folder's shared timing cache) and stored there."""
    options = options or BuildOptions()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {onnx_path}")
    version = str(installed_version())
    compute_capability, _ = gpu_compute_capability(device)
    manifest = Manifest.read_onnx(onnx_path)
    fp32_layers = tuple(manifest.fp32_layers if options.fp32_layers is None else options.fp32_layers)
    cache = EngineCache(Path(cache_dir).expanduser())
    key = engine_cache_key(file_sha256(onnx_path), version, compute_capability, options.precision,
                           align_profile(options.profile, manifest.pad_multiple), fp32_layers,
                           channels=manifest.in_channels)
    cached = cache.lookup(key)
    if cached is not None:
        return cached
    timing = options.timing_cache or cache.timing_cache_path(version, compute_capability)
    build_options = dataclasses.replace(options, timing_cache=timing, fp32_layers=fp32_layers)
    return build_engine(onnx_path, cache.engine_path(key), build_options, manifest=manifest, device=device).engine_path
