"""Several train steps per dispatch (``steps_per_dispatch``): the same batches, keys and schedule as one step at a
time, logs, evaluations and checkpoints on their own steps, exact resume; refused where the host makes batches."""

import json

import jax
import numpy as np
import pytest

from configs import digits
from resnet_jax.data.sources import named
from resnet_jax.errors import ConfigError
from resnet_jax.train import checkpoint, loop


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 8),  # nothing before step 8: a whole dispatch
        (40, 8),  # step 48 is the last one before the log at 50
        (48, 2),  # the log at 50: 2 steps
        (50, 8),
        (464, 4),  # the evaluation at 469: 4 steps, then 1
        (468, 1),
        (996, 4),  # the last step, 1000
    ],
)
def test_a_dispatch_stops_at_the_next_log_evaluation_checkpoint_or_last_step(step, expected):
    assert loop.dispatch_length(step, 8, (50, 469, 469), 1000) == expected


def test_a_whole_run_hits_every_event_step_with_at_most_four_programs_of_eight():
    every, last, step, lengths, reached = (50, 469, 100), 1000, 0, set(), set()
    while step < last:
        length = loop.dispatch_length(step, 8, every, last)
        lengths.add(length)
        step += length
        reached.add(step)
    assert lengths <= {8, 4, 2, 1}
    events = {step for interval in every for step in range(interval, last + 1, interval)} | {last}
    assert events <= reached


def digits_config(data_dir, **fields):
    """Digits on the devices, Random Erasing and crops made inside the step, a constant learning rate."""
    config = digits.get_config()
    config.update(
        dict(
            data_dir=str(data_dir),
            num_epochs=0.0,
            num_train_steps=16,
            warmup_epochs=0.0,
            schedule="constant",
            learning_rate=0.02,
            log_every_steps=8,
            eval_every_steps=16,
            checkpoint_every_steps=8,
            batch_size=32,
        )
    )
    config.random_erasing.probability = 0.5
    config.update(fields)
    return config


def train_lines(workdir) -> list[dict]:
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "train/loss" in line]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    named.write_numpy_copy("digits", str(directory))
    return directory


@pytest.mark.slow
def test_eight_steps_per_dispatch_train_as_one_at_a_time_and_resume_exactly(data_dir, tmp_path):
    """8 steps a dispatch, stopped at step 8 (its checkpoint) and resumed to 16, against one step a dispatch."""
    one = loop.train_and_evaluate(digits_config(data_dir), tmp_path / "one")
    loop.train_and_evaluate(digits_config(data_dir, steps_per_dispatch=8, num_train_steps=8), tmp_path / "eight")
    eight = loop.train_and_evaluate(digits_config(data_dir, steps_per_dispatch=8), tmp_path / "eight")

    # Bitwise: on XLA:CPU the 8 steps are unrolled, and each compiles as the single step does. (A loop on an
    # accelerator may fuse differently: there the runs agree to float reassociation.)
    assert eight["step"] == 16 and eight["num_eval_examples"] == one["num_eval_examples"] == 360
    assert eight["eval/loss"] == one["eval/loss"]
    lines, expected = train_lines(tmp_path / "eight"), train_lines(tmp_path / "one")
    assert [line["step"] for line in lines] == [line["step"] for line in expected] == [8, 16]
    assert [line["train/loss"] for line in lines] == [line["train/loss"] for line in expected]
    leaves, reference = (
        jax.tree_util.tree_leaves_with_path(checkpoint.load_tree(tmp_path / name)) for name in ("eight", "one")
    )
    assert len(leaves) == len(reference) > 100  # parameters, BN statistics, momentum buffers
    for (path, ours), (_, theirs) in zip(leaves, reference, strict=True):
        np.testing.assert_array_equal(ours, theirs, err_msg=jax.tree_util.keystr(path))


def test_steps_per_dispatch_where_the_host_makes_the_batches_is_refused_saying_what_to_set(data_dir, tmp_path):
    config = digits_config(data_dir, steps_per_dispatch=4, input_placement="host")
    with pytest.raises(ConfigError, match=r"batches are made on the host.*set --config.steps_per_dispatch=1"):
        loop.train_and_evaluate(config, tmp_path)
