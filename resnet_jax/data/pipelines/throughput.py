"""Input-pipeline throughput: examples/s that a config's train and eval pipelines deliver on this host.

Run through ``python -m resnet_jax.benchmark --input_config configs/FILE.py[:ARG] --data_dir DIR``. It
reports, never asserts: compare ``train_examples_per_sec`` with what the train step consumes
(``python -m resnet_jax.benchmark --model ...``) to see whether input could limit training.
"""

import itertools
import os
import time


def _examples_per_sec(batches, count: int, warmup: int) -> tuple[float, int]:
    """Examples/s over ``count`` batches after ``warmup`` untimed ones; also the batches actually timed."""
    for _ in itertools.islice(batches, warmup):
        pass
    start, examples, timed = time.perf_counter(), 0, 0
    for batch in itertools.islice(batches, count):
        examples += len(batch["label"])
        timed += 1
    return examples / (time.perf_counter() - start), timed


def measure_input(settings, batch_size: int, steps: int, warmup: int = 5, seed: int = 0) -> dict:
    """Host examples/s of the train pipeline and of the test split's eval pipeline that the data ``settings``
    describe, ``steps`` batches of ``batch_size`` each.

    Eval batches are padded to full size, so the eval figure counts padding rows too.
    """
    from resnet_jax import data

    placement = data.Placement(batch_size, batch_size)
    datasets = data.create_datasets(settings, placement, seed=seed, num_classes=0)
    train_rate, train_batches = _examples_per_sec(datasets.train_batches(0), steps, warmup)
    eval_rate, eval_batches = _examples_per_sec(iter(datasets.eval_splits[data.TEST].batches()), steps, 0)
    return {
        "dataset": settings.dataset,
        "batch_size": batch_size,
        "image_shape": list(datasets.image_shape),
        "train_examples_per_sec": train_rate,
        "eval_examples_per_sec": eval_rate,
        "train_batches_timed": train_batches,
        "eval_batches_timed": eval_batches,
        "host_cpus": os.cpu_count(),
    }
