#!/usr/bin/env bash
# Our train step against the bare-Flax step of the same network, on a GPU, in one call of the device tool:
#     bash experiments/gpu_overhead.sh OUTDIR
# Writes OUTDIR/gpu.txt (card, driver), OUTDIR/overhead.jsonl (one benchmark JSON object per line)
# and OUTDIR/log.txt. Needs only jax, flax and optax; each benchmark is bounded in time.
set -u
out=${1:?usage: gpu_overhead.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" >> "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
bench() {
    timeout 200 python3 -m resnet_jax.benchmark --reference --rounds 3 --json "$@" >> "$out/overhead.jsonl" 2>> "$out/log.txt"
    echo "rc=$? $*"
}
bench --model resnet50 --batch_size 256 --dtype bfloat16 --steps 30
bench --model cifar_resnet20 --batch_size 128 --steps 100
bench --model cifar_resnet56 --batch_size 128 --steps 50
bench --model resnext29_8x64d --batch_size 128 --dtype bfloat16 --steps 20
python3 - "$out/overhead.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['model']:>16} b{r['batch_size']} {r['dtype']:>8}: ours {r['examples_per_sec']:9.0f} img/s, bare "
          f"{r['reference_examples_per_sec']:9.0f}, ratio {r['throughput_vs_reference']:.3f} (spreads "
          f"{r['step_time_spread']:.3f}/{r['reference_step_time_spread']:.3f}), bytes {r['bytes_accessed_vs_reference']:.3f}, "
          f"MFU {100 * r['mfu']:.1f}%")
PY
