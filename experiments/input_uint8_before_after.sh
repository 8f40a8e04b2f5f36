#!/usr/bin/env bash
# Input-pipeline throughput of two commits on the same stand-in data, one process after the other:
#     bash experiments/input_uint8_before_after.sh 8a74d6c 631a2e1 OUTDIR
# (8a74d6c normalises images to float32 on the host; 631a2e1 sends uint8 and normalises on the device.)
set -eu
declare -A commits=([before]=$1 [after]=$2); out=$3
repo=$(git rev-parse --show-toplevel)
mkdir -p "$out"
python "$repo/experiments/input_benchmark_data.py" --workdir /tmp/input_bench
python -m resnet_jax.data.prepare digits --data_dir /tmp/input_bench/tfds
for name in before after; do
  commit=${commits[$name]}; tree=/tmp/input_bench_$name
  rm -rf "$tree"; git -C "$repo" worktree add -f -q "$tree" "$commit"
  cd "$tree"
  bench() { python -m resnet_jax.benchmark --input_config "$1" --data_dir /tmp/input_bench/tfds --batch_size "$2" --steps "$3" --json; }
  bench configs/cifar10.py:resnet20 128 300 > "$out/input_uint8_${name}_cpu2_cifar10.json"
  bench configs/digits.py 128 300 > "$out/input_uint8_${name}_cpu2_digits.json"
  bench configs/imagenet.py:resnet50 64 30 > "$out/input_uint8_${name}_cpu2_imagenet2012.json"
  cd "$repo"; git worktree remove --force "$tree"
done
