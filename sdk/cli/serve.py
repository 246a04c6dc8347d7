"""``deblur serve [MODEL]``: serve a model to many cameras through Triton Inference Server (PyTriton).

Examples::

    deblur serve                                   # the bundled model on 127.0.0.1:8000 (HTTP) and :8001 (gRPC)
    deblur serve model.engine --max-batch 8 --instances 2 --host 0.0.0.0
    deblur run rtsp://cam1/stream --model grpc://gpu-box:8001/deblur -o cam1.mp4
"""

from __future__ import annotations

import argparse
import sys

from sdk.serving.protocol import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_MODEL_NAME

HELP = "serve a model over HTTP/gRPC with Triton Inference Server (dynamic batching; needs the serve extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a .engine, .onnx or .pt model, or a bundled model's name (default: the bundled default)")
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help=f"the model's name on the server (default {DEFAULT_MODEL_NAME})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT)
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port; 0 turns metrics off")
    parser.add_argument("--max-batch", type=int, default=8, help="most frames (of one size) in a batch (default 8)")
    parser.add_argument("--instances", type=int, default=1, help="model instances, each with its own Deblurrer (default 1)")
    parser.add_argument("--queue-delay-us", type=int, default=500,
                        help="how long a request may wait for others of its size to batch with (default 500 us)")
    parser.add_argument("--backend", default="auto", choices=("auto", "tensorrt", "onnxruntime", "torch"))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or tensorrt")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads per instance (default: ONNX Runtime's)")


def run(args: argparse.Namespace) -> int:
    from sdk.serving.server import ServeOptions, serve

    options = ServeOptions(model=args.model, name=args.name, host=args.host, http_port=args.http_port,
                           grpc_port=args.grpc_port, metrics_port=args.metrics_port or None,
                           max_batch=args.max_batch, instances=args.instances, queue_delay_us=args.queue_delay_us,
                           backend=args.backend, device=args.device, threads=args.threads)

    def ready(http_url: str, grpc_url: str) -> None:
        print(f"deblur serve: ready, model {args.name!r} at {http_url} and {grpc_url} "
              f"(max batch {args.max_batch}, {args.instances} instance(s))", flush=True)

    serve(options, ready=ready)
    print("deblur serve: stopped", file=sys.stderr, flush=True)
    return 0
