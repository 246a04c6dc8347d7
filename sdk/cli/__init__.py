"""The ``deblur`` command line: one entry point, one module per sub-command.

Each sub-command module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and keeps
heavy imports (torch, training, export) inside ``run`` so that ``deblur --help`` and the runtime
commands work in a runtime-only install.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# sub-command name -> module under sdk.cli; order is the order of `deblur --help`.
COMMANDS: dict[str, str] = {
    "run": "run",
    "demo": "demo",
    "info": "info",
    "export": "export",
    "bench": "bench",
    "serve": "serve",
    "models": "models",
    "train": "train",
    "eval": "eval",
    "synth": "synth",
    "doctor": "doctor",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deblur", description="deblur-sdk: deblurring networks from training to the edge")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        # Users get one clear line, not a traceback; DEBLUR_DEBUG=1 shows the traceback.
        import os

        if os.environ.get("DEBLUR_DEBUG"):
            raise
        print(f"deblur {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
