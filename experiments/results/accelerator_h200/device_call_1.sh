#!/usr/bin/env bash
# One device call: wheels, a smoke run, the baseline (cut at BASE_S, resumable), then the benchmarks.
set -u
BASE_S=${1:-400}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
out=/tmp/accel
[ -d $out ] || [ ! -f .device_prev/accel.tar.gz ] || tar xzf .device_prev/accel.tar.gz -C /tmp
mkdir -p $out
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ ! -d $out/baseline ]; then
  timeout 90 python3 -m resnet_jax.main --config=configs/fashion_mnist.py:resnet20 --workdir=$out/smoke \
     --config.data_dir=.device_data --config.num_train_steps=5 > $out/smoke.log 2>&1
  rc=$?; tail -n 4 $out/smoke.log
  if [ $rc != 0 ]; then tail -n 40 $out/smoke.log; cp $out/smoke.log $OUT/; exit 1; fi
fi
bash experiments/accelerator_check.sh baseline $out $BASE_S
if [ ! -s $out/bench.jsonl ]; then bash experiments/accelerator_check.sh bench $out 35; fi
grep -h "step \|eval at\|First step\|finished" $out/baseline.log | tail -n 6
(cd /tmp && tar czf $OUT/accel.tar.gz accel)
ls -la $OUT
