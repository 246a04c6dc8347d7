#!/usr/bin/env bash
# The committed CPU results: every model at 256x256 and the default model at 1280x720, PyTorch eager vs
# torch.compile vs ONNX Runtime, then the folder's summary.md (the headline ratios) and model_sizes.md.
#
# Run it on a QUIET machine (nothing else running): the results record the load average, and numbers
# taken under load are not worth committing. On the 2-core CI machine it takes about an hour, most of
# it Inductor compiling the large models and the 60 s cap of each slow series.
#
#   benchmarks/run_cpu_suite.sh                    # all cores, 20 timed calls per series
#   THREADS=1 ITERS=50 benchmarks/run_cpu_suite.sh
#   OVERWRITE=1 benchmarks/run_cpu_suite.sh          # replace the committed files (refused otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-benchmarks/results}
THREADS=${THREADS:-$(nproc)}
ITERS=${ITERS:-20}
WARMUP=${WARMUP:-3}
MAX_SECONDS=${MAX_SECONDS:-60}
BACKENDS=torch-fp32,torch-compile,ort-cpu
PY=${PYTHON:-python}

load=$(cut -d' ' -f1 /proc/loadavg)
if "$PY" -c "import os, sys; sys.exit(0 if float('$load') <= 0.5 * os.cpu_count() else 1)"; then
    echo "load average $load: ok"
else
    echo "WARNING: load average $load on $(nproc) cores; timings will be noisy (the results record the load)" >&2
fi

bench() { "$PY" -m sdk.cli bench "$@" --backends "$BACKENDS" --threads "$THREADS" --iters "$ITERS" \
              --warmup "$WARMUP" --max-seconds "$MAX_SECONDS" --out "$OUT" ${OVERWRITE:+--overwrite}; }

# The network inside the bundled default model, so that its 720p row exists even where only the ONNX
# is bundled (PyTorch rows need weights; random ones time the same).
default_onnx=sdk/models/default.onnx
default_variant=""
if [ -f "$default_onnx" ]; then
    default_variant=$("$PY" -c "from sdk.manifest import Manifest; print(Manifest.read_onnx('$default_onnx').variant)")
fi

models=$("$PY" -c "from benchmarks.sizing import image_models; print(' '.join(image_models()))")
for model in $models; do
    if [ "$model" = "$default_variant" ]; then
        bench "$model" --res 256,720p
    else
        bench "$model" --res 256
    fi
done

if [ -f "$default_onnx" ]; then
    # The bundled file itself (ONNX Runtime rows; PyTorch rows too when sdk/models/default.pt lies beside it).
    bench --res 256,720p
else
    echo "WARNING: $default_onnx is missing: no 'default' rows (the lead bundles it)" >&2
fi

slug=$("$PY" -c "from benchmarks.devices import detect_device; print(detect_device('cpu').slug)")
"$PY" -m benchmarks.report "$OUT/$slug"
"$PY" -m benchmarks.sizing --threads "$THREADS" --max-seconds "$MAX_SECONDS"
echo "done: $OUT/$slug/ and benchmarks/results/model_sizes.md"
