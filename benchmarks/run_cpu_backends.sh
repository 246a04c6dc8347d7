#!/usr/bin/env bash
# The CPU backends of the bundled model, in one run, through sdk.Deblurrer: ONNX Runtime fp32 and
# OpenVINO fp32 / bf16 / int8 at 1280x720, then their quality on the held-out synthetic set.
#
#   1. `deblur synth` makes the paired set (train + held-out test split);
#   2. the int8 IR is quantised by NNCF on the TRAIN split (never on the pairs it is scored on);
#   3. speed: pinned to one core (taskset -c $CPU, one thread per backend), backends interleaved call by
#      call so that a shared machine's load falls on all alike; the result records the load per round;
#   4. quality: PSNR/SSIM of each backend on the test split, the change against fp32.
#
#   benchmarks/run_cpu_backends.sh                         # writes benchmarks/results/<machine>/
#   OUT=/tmp/bench ITERS=20 benchmarks/run_cpu_backends.sh
#   OVERWRITE=1 benchmarks/run_cpu_backends.sh             # replace the committed files (refused otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python}
OUT=${OUT:-benchmarks/results}
DATA=${DATA:-synth_out}
CPU=${CPU:-0}
ITERS=${ITERS:-8}
WARMUP=${WARMUP:-1}
MODEL=sdk/models/default.onnx
INT8=${INT8:-$DATA/default-int8.xml}
BACKENDS=ort-cpu,openvino-fp32,openvino-bf16,openvino-int8

[ -d "$DATA/test" ] || "$PY" -m sdk.cli synth --out "$DATA" --quiet
[ -f "$INT8" ] || taskset -c "$CPU" "$PY" -m sdk.cli export "$MODEL" --to openvino --precision int8 \
    --calibration "$DATA/train" --calibration-frames 128 --out "$INT8"
echo "load average before: $(cat /proc/loadavg)"
taskset -c "$CPU" "$PY" -m sdk.cli bench "$MODEL" --backends "$BACKENDS" --int8 "$INT8" --res 1280x720 \
    --threads 1 --iters "$ITERS" --warmup "$WARMUP" --interleave --out "$OUT" ${OVERWRITE:+--overwrite}
taskset -c "$CPU" "$PY" -m benchmarks.quality "$MODEL" --data "$DATA" --backends "$BACKENDS" --int8 "$INT8" \
    --threads 1 --device cpu --out "$OUT/$(taskset -c "$CPU" "$PY" -c 'from benchmarks.devices import detect_device; print(detect_device().slug)')" \
    ${OVERWRITE:+--overwrite}
echo "load average after: $(cat /proc/loadavg)"
