"""``deblur info MODEL``: the manifest, and the backend, device and precision a model runs with."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "show a model's manifest and the backend, device and precision it runs with"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a .engine, .onnx or .pt model, or a bundled model's name (default: the bundled default)")
    from sdk.backends import BACKENDS

    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="which backend opens the model (default: auto, see `deblur info --backends`)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--backends", action="store_true",
                        help="list every backend: the files it opens, devices, precisions, whether it is installed")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _manifest_only(path: Path) -> dict[str, object]:
    """What can be said about an engine where TensorRT is not installed: its manifest (header or sidecar)."""
    from sdk.backends.engine_file import load_engine, missing_manifest_message

    manifest, source, _ = load_engine(path)
    if manifest is None:
        raise ValueError(missing_manifest_message(path))
    return {"model": str(path), "backend": "tensorrt (not installed here)", "device": "-",
            "precision": manifest.precision, "manifest_source": source, "manifest": manifest.to_dict()}


def _list_backends(as_json: bool) -> int:
    from sdk.backends import REGISTRY

    rows = [{"backend": s.name, "installed": s.installed(), "opens": list(s.suffixes), "devices": list(s.devices),
             "precisions": list(s.precisions) or ["fixed when built"], "install": s.install, "about": s.summary}
            for s in REGISTRY]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "installed" if r["installed"] else f"not installed: {r['install']}"
        print(f"{r['backend']:<12} {' '.join(r['opens']):<20} devices {','.join(r['devices']):<22} "
              f"precisions {','.join(r['precisions']):<16} {state}")
    print("backend='auto' takes the first installed one, in this order, that opens the file on the device")
    return 0


def run(args: argparse.Namespace) -> int:
    import sdk
    from sdk.backends import backend_for
    from sdk.bundled import resolve_model

    if args.backends:
        return _list_backends(args.json)
    path = resolve_model(args.model)
    try:
        deblur = sdk.Deblurrer(path, backend=args.backend, device=args.device)
    except ImportError as exc:
        if backend_for(path, args.backend, args.device) != "tensorrt":
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
