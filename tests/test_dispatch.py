"""Several train steps per dispatch (``steps_per_dispatch``): logs, evaluations and checkpoints on their own steps,
at most log2(k) + 1 programs; refused where the host makes batches. That k steps a dispatch train bitwise as one at
a time, resumed too: tests/test_lean_runs.py's resumed run on the devices."""

import pytest

from configs import digits
from resnet_jax.data.sources import named
from resnet_jax.errors import ConfigError
from resnet_jax.train import loop


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


def test_steps_per_dispatch_where_the_host_makes_the_batches_is_refused_saying_what_to_set(tmp_path):
    named.write_numpy_copy("digits", str(tmp_path / "data"))
    config = digits.get_config()
    config.update(dict(data_dir=str(tmp_path / "data"), steps_per_dispatch=4, input_placement="host"))
    with pytest.raises(ConfigError, match=r"batches are made on the host.*set --config.steps_per_dispatch=1"):
        loop.train_and_evaluate(config, tmp_path / "run")
