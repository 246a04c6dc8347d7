"""``deblur export``: checkpoint or model name -> verified ONNX, or -> TensorRT engine.

Examples::

    deblur export runs/nano/best.pt --to onnx --fp16             # ONNX + parity, TensorRT op check, FP16 report
    deblur export runs/nano/best.pt --to engine --fp16 --shapes 1x3x256x256:1x3x720x1280:1x3x1088x1920
    deblur export model.onnx --to engine --fp16                  # build from an exported ONNX
    deblur export model.onnx --to openvino --precision int8 --calibration synth_out   # NNCF int8 IR
    deblur export runs/nano/best.pt --to onnx --fused            # fused attention as TensorRT plugin nodes
    deblur export runs/nano/best.pt --to engine --fused --fp16   # registers the plugins, then parses and builds
    deblur export model.onnx --to triton-repo --out repo/        # a Triton Inference Server model repository
    deblur export fused.onnx --to engine --fp16 --plugins cpp    # deblur plugin ops from the C++ library (JetPack 6)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

HELP = "export a checkpoint or model name to ONNX (verified) or a TensorRT engine"
DEFAULT_SHAPES = "1x3x256x256:1x3x720x1280:1x3x1088x1920"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="CHECKPOINT_OR_NAME",
                        help="a checkpoint (.pt), a bundled model's name (default, small), a registered model name "
                             "(with --random-weights), or for --to engine/openvino/triton-repo an .onnx")
    from sdk.backends.registry import export_targets

    targets = export_targets()
    parser.add_argument("--to", choices=(*targets, "triton-repo"), default="onnx",
                        help="what to produce: " + "; ".join(f"{k}: {v.summary}" for k, v in targets.items())
                             + "; triton-repo: a Triton Inference Server model repository (default onnx)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                        help="--to openvino: fp32, bf16 (run with the bfloat16 hint) or int8 (NNCF, needs --calibration)")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="--to openvino --precision int8: frames to calibrate on (images, or a `deblur synth` set)")
    parser.add_argument("--calibration-frames", type=int, default=100, metavar="N",
                        help="calibration frames taken, spread evenly over DIR (default 100)")
    parser.add_argument("--fp16", action="store_true",
                        help="run the FP16 safety analysis (pins overflowing layers to fp32); for engines, build fp16")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, metavar="MIN:OPT:MAX",
                        help=f"engine optimisation profile, NxCxHxW each (default {DEFAULT_SHAPES})")
    parser.add_argument("--out", type=Path, help="output path (default: the source's name with .onnx/.engine)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default 17, TensorRT 8.6's newest)")
    parser.add_argument("--workspace", default="1G", help="TensorRT builder workspace limit, e.g. 512M, 2G (default 1G)")
    parser.add_argument("--timing-cache", type=Path, help="TensorRT timing cache file, read and updated (default none)")
    parser.add_argument("--random-weights", action="store_true",
                        help="allow a registered model name: export freshly initialised (untrained) weights, "
                             "for toolchain checks only")
    parser.add_argument("--fused", action="store_true",
                        help="export the fused attention ops as TensorRT plugin nodes (TensorRT >= 10.6, or >= 10.3 with "
                             "--plugins cpp; ONNX Runtime cannot run the result), parity-checked against PyTorch "
                             "through the reference ops")
    parser.add_argument("--jit", action="store_true",
                        help="with --fused: the plugins' JIT (Python) kernels instead of the ahead-of-time ones "
                             "(AOT needs TensorRT >= 10.9; --plugins cpp implies --jit)")
    parser.add_argument("--plugins", choices=("cpp", "python"),
                        help="plugin flavour for a fused ONNX's deblur ops: the C++ library (TensorRT >= 10.3, JetPack 6) "
                             "or the Python plugins (TensorRT >= 10.6); default python where TensorRT >= 10.6, else cpp")
    parser.add_argument("--plugin-library", type=Path, metavar="SO",
                        help="path of libdeblur_trt_plugins.so for --plugins cpp (default: $DEBLUR_TRT_PLUGIN_LIBRARY, "
                             "sdk/lib/, build/kernels/csrc/)")
    from export import triton_repo  # standard library and sdk.manifest only: `deblur --help` stays light

    triton_repo.add_arguments(parser)


def _default_out(source: str, suffix: str) -> Path:
    path = Path(source)
    return path.with_suffix(suffix) if path.suffix else Path(path.name + suffix)


def _to_openvino(args: argparse.Namespace) -> int:
    from export.openvino import export_openvino

    source = Path(args.source)
    if source.suffix.lower() == ".onnx":
        if not source.is_file():
            raise FileNotFoundError(f"ONNX file not found: {source}")
        onnx_path = source
    else:   # a checkpoint or a model name: through the verified ONNX first (needs the train extra)
        try:
            from export.onnx import export_onnx
        except ImportError as exc:
            from sdk.extras import missing_extra

            raise missing_extra("exporting a checkpoint", "train", exc) from None
        onnx_path = _default_out(args.source, ".onnx")
        report = export_onnx(args.source, onnx_path, opset=args.opset, strict=False)
        print(report.format())
        if not report.ok:
            print("not converting an ONNX that failed verification")
            return 1
    result = export_openvino(onnx_path, args.out or _default_out(str(onnx_path), ".xml"), precision=args.precision,
                             calibration=args.calibration, max_frames=args.calibration_frames)
    print(result.format())
    return 0


def _require_tensorrt(import_tensorrt: Callable[[], object]) -> None:
    try:
        import_tensorrt()
    except ImportError as exc:
        hint = "" if "pip install" in str(exc) else (
            "; install it with pip install 'deblur-sdk[trt]' on an NVIDIA GPU machine (JetPack's "
            "python3-libnvinfer on Jetson), or export --to onnx here and build the engine on the target")
        raise ImportError(f"{exc}{hint}") from None


# What `deblur export NAME --to T` writes into the current folder for a bundled model NAME.
_BUNDLED_OUT_SUFFIX = {"onnx": ".onnx", "engine": ".engine", "openvino": ".xml"}


def _use_bundled_model(args: argparse.Namespace) -> None:
    """A bundled model's name (``deblur export small --to engine``) becomes its file: the ONNX for an engine,
    OpenVINO or Triton, the checkpoint for ``--to onnx`` and ``--fused`` (which export from PyTorch); the
    result goes to the current folder, not into the installed package."""
    from sdk.bundled import bundled_model_path, bundled_name

    name = None if args.random_weights else bundled_name(args.source)
    if name is None:
        return
    args.source = str(bundled_model_path(name, ".pt" if args.to == "onnx" or args.fused else ".onnx"))
    if args.out is None and args.to in _BUNDLED_OUT_SUFFIX:
        args.out = Path.cwd() / f"{name}{'.fused' if args.fused and args.to == 'onnx' else ''}{_BUNDLED_OUT_SUFFIX[args.to]}"


def run(args: argparse.Namespace) -> int:
    _use_bundled_model(args)
    source = Path(args.source)
    if not source.suffix and not source.is_file() and not args.random_weights:
        raise ValueError(f"{args.source!r} is not a checkpoint file; if it is a model name, exporting it gives "
                         "untrained random weights: pass --random-weights to mean that, or give a checkpoint (.pt)")
    if args.to == "openvino":
        return _to_openvino(args)
    if args.to == "triton-repo":
        from export import triton_repo

        return triton_repo.run_cli(args)
    try:
        from export.tensorrt import BuildOptions, build_engine, import_tensorrt, parse_shapes, parse_size
    except ImportError as exc:
        from sdk.extras import missing_extra

        raise missing_extra("`deblur export`", "train", exc) from None

    # Fail on a bad profile or workspace before the (slow) export, not after it.
    profile = parse_shapes(args.shapes)
    workspace = parse_size(args.workspace)
    if args.jit and not args.fused:
        raise ValueError("--jit applies to the fused export only: add --fused")
    if args.to == "engine":
        if source.suffix == ".onnx":
            if not source.is_file():
                raise FileNotFoundError(f"ONNX file not found: {source}")
            if args.fused:
                from export.plugins import plugin_nodes

                if not plugin_nodes(source):
                    raise ValueError(f"{source} has no fused-op (plugin) nodes: export the checkpoint with --fused")
        _require_tensorrt(import_tensorrt)      # before anything is written: no stray ONNX
    ok = True
    if args.to == "engine" and source.suffix == ".onnx":
        onnx_path = source
    elif args.fused:
        from export.fused import FUSED_OPSET, export_fused_onnx

        onnx_path = args.out if args.to == "onnx" and args.out else _default_out(args.source, ".fused.onnx")
        # The C++ plugins have no ahead-of-time variant: their nodes must not ask for one (aot=1).
        aot = not args.jit and args.plugins != "cpp"
        report = export_fused_onnx(args.source, onnx_path, aot=aot, opset=max(args.opset, FUSED_OPSET),
                                   strict=False)
        print(report.format())
        ok = report.ok
        if args.to == "onnx":
            return 0 if ok else 1
        if not report.ok:
            print("not building an engine from an ONNX that failed verification")
            return 1
    else:
        from export.onnx import export_onnx

        onnx_path = args.out if args.to == "onnx" and args.out else _default_out(args.source, ".onnx")
        report = export_onnx(args.source, onnx_path, opset=args.opset, fp16=args.fp16, strict=False)
        print(report.format())
        ok = report.ok and (report.fp16 is None or report.fp16.ok)
        if args.to == "onnx":
            return 0 if ok else 1
        if not report.ok:
            print("not building an engine from an ONNX that failed verification")
            return 1

    engine_path = args.out or _default_out(str(onnx_path), ".engine")
    options = BuildOptions(precision="fp16" if args.fp16 else "fp32", profile=profile, workspace_bytes=workspace,
                           timing_cache=args.timing_cache)
    result = build_engine(onnx_path, engine_path, options, plugins=args.plugins, plugin_library=args.plugin_library)
    print(result.format())
    return 0 if ok else 1
