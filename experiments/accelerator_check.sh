#!/usr/bin/env bash
# The product on an accelerator image (jax, flax, optax, orbax; no TensorFlow), one part per call:
#     bash experiments/accelerator_check.sh PART OUTDIR [BUDGET_S [FLAG ...]]
# PART:
#   bench     train-step benchmarks against the bare-Flax step (--reference): resnet50 bf16 batch 256,
#             cifar_resnet20 and cifar_resnet56 batch 128 -> OUTDIR/bench.jsonl
#   baseline  configs/fashion_mnist.py:resnet20, Zhong et al.'s 300 epochs -> OUTDIR/baseline/
#   erasing   configs/fashion_mnist.py:resnet20,erasing, the same with Random Erasing -> OUTDIR/erasing/
#   dispatch  cifar_resnet20 batch 128: images/s at 1, 8 and 32 steps per dispatch, float32 and bfloat16, with
#             XLA's default command buffers and with loops captured too (WHILE, CONDITIONAL) -> OUTDIR/bench.jsonl
#   authors   configs/fashion_mnist.py:MODEL,authors, the authors' released code, seed SEED (environment: MODEL
#             resnet20, SEED 0 unless set) -> OUTDIR/authors_MODEL_seedSEED/
#   authors_erasing  the same with their Random Erasing -> OUTDIR/authors_erasing_MODEL_seedSEED/
# The queue, in order (issue 40): dispatch; then authors and authors_erasing for resnet20, seeds 0 1 2 (with
# --config.steps_per_dispatch=K, the fastest K of dispatch); then resnet32, 44, 56 the same way.
# A run gets BUDGET_S seconds (default 420, so a part with start-up fits in 8 minutes); then SIGTERM makes it
# checkpoint and stop, and the same command resumes it from OUTDIR. FLAGs go to the main command (runs) or
# to the benchmark (bench), after the script's own: the test runs a few CPU steps with them.
# Needs Fashion-MNIST's numpy copy in DATA_DIR (default .device_data): python -m resnet_jax.data.prepare
# fashion_mnist --data_dir .device_data writes it (DATA_DIR/resnet_jax_arrays/fashion_mnist.npz, 30 MB).
set -u
usage="usage: accelerator_check.sh bench|dispatch|baseline|erasing|authors|authors_erasing OUTDIR [BUDGET_S [FLAG ...]]"
loops_captured="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
part=${1:?$usage}
out=${2:?$usage}
budget=${3:-420}
shift $(($# < 3 ? $# : 3))
data_dir=${DATA_DIR:-.device_data}
read -r -a python <<< "${PYTHON:-python3}"  # may be a command with arguments
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    "${python[@]}" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
} > "$out/device.txt" 2>&1

bench() {
    timeout "$budget" "${python[@]}" -m resnet_jax.benchmark --reference --json "$@" >> "$out/bench.jsonl" 2>> "$out/bench.log"
    echo "rc=$? benchmark $*"
}

train() {  # train NAME CONFIG_ARG: the run in OUTDIR/NAME, resumed if it is there
    local workdir="$out/$1"
    timeout --signal=TERM --kill-after=60 "$budget" "${python[@]}" -m resnet_jax.main \
        --config="configs/fashion_mnist.py:$2" --workdir="$workdir" --config.data_dir="$data_dir" \
        --config.checkpoint_every_steps=9380 --config.max_checkpoints_to_keep=1 "${@:3}" >> "$out/$1.log" 2>&1
    local rc=$?
    echo "rc=$rc $1 ($2)"
    tail -n 3 "$out/$1.log"
    return $rc
}

case "$part" in
    bench)
        bench --model resnet50 --batch_size 256 --dtype bfloat16 --steps 30 "$@"
        bench --model cifar_resnet20 --batch_size 128 --steps 100 "$@"
        bench --model cifar_resnet56 --batch_size 128 --steps 50 "$@"
        ;;
    dispatch)
        for dtype in float32 bfloat16; do
            bench --model cifar_resnet20 --batch_size 128 --dtype "$dtype" --steps 320 --steps_per_dispatch 1 8 32 "$@"
            XLA_FLAGS="${XLA_FLAGS:-} $loops_captured" bench --model cifar_resnet20 --batch_size 128 --dtype "$dtype" \
                --steps 320 --steps_per_dispatch 1 8 32 "$@"
        done
        ;;
    baseline) train baseline resnet20 "$@" ;;
    erasing) train erasing resnet20,erasing "$@" ;;
    authors) train "authors_${MODEL:-resnet20}_seed${SEED:-0}" "${MODEL:-resnet20},authors" --config.seed="${SEED:-0}" "$@" ;;
    authors_erasing)
        train "authors_erasing_${MODEL:-resnet20}_seed${SEED:-0}" "${MODEL:-resnet20},authors,erasing" \
            --config.seed="${SEED:-0}" "$@"
        ;;
    *) echo "unknown part $part: use bench, dispatch, baseline, erasing, authors or authors_erasing" >&2; exit 2 ;;
esac
