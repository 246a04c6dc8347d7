"""``deblur info MODEL``: the manifest, and the backend, device and precision a model runs with."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "show a model's manifest and the backend, device and precision it runs with"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a .engine, .onnx or .pt model (default: the bundled model)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _manifest_only(path: Path) -> dict[str, object]:
    """What can be said about an engine where TensorRT is not installed: its manifest (header or sidecar)."""
    from sdk.backends.engine_file import load_engine, missing_manifest_message

    manifest, source, _ = load_engine(path)
    if manifest is None:
        raise ValueError(missing_manifest_message(path))
    return {"model": str(path), "backend": "tensorrt (not installed here)", "device": "-",
            "precision": manifest.precision, "manifest_source": source, "manifest": manifest.to_dict()}


def run(args: argparse.Namespace) -> int:
    import sdk
    from sdk.backends import backend_for

    path = Path(args.model) if args.model else sdk.default_model_path()
    try:
        deblur = sdk.Deblurrer(path, device=args.device)
    except ImportError as exc:
        if backend_for(path) != "tensorrt":
            raise
        report = _manifest_only(path)
        print(f"note: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            print(f"model         {report['model']}\nbackend       {report['backend']}")
            print(sdk.Manifest.from_dict(report["manifest"]).summary())
        return 0
    info = deblur.info
    if args.json:
        print(json.dumps({"model": info.model, "backend": info.backend, "device": info.device,
                          "precision": info.precision, "manifest_source": info.manifest_source,
                          "details": info.details, "manifest": info.manifest.to_dict()}, indent=2, sort_keys=True))
    else:
        print(info)
    deblur.close()
    return 0
