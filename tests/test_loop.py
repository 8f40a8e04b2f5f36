"""The whole job on 8 simulated devices: learning, exact eval, workdir files, divergence, bad configs."""

import dataclasses
import json
import math
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from resnet_jax.data.pipelines import synthetic
from resnet_jax.models import create_model
from resnet_jax.train import checkpoint, loop, program, sharding

pytestmark = pytest.mark.xdist_group("loop")  # one worker shares the trained fixture


def tiny_config(**fields):
    """The default config at 8x8 pixels and batch 16: seconds per run after compilation."""
    config = default.get_config()
    config.image_size = 8
    config.batch_size = 16
    config.num_train_steps = 10
    config.log_every_steps = 5
    config.eval_every_steps = 100
    config.checkpoint_every_steps = 100
    config.synthetic.num_eval_examples = 64
    config.update(fields)
    return config


def read_metrics(workdir) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 150-step run with an EMA, shared by the tests that read its workdir."""
    workdir = tmp_path_factory.mktemp("trained")
    config = tiny_config(num_train_steps=150, log_every_steps=25, ema_decay=0.9)
    return workdir, loop.train_and_evaluate(config, workdir)


def test_learns_the_synthetic_rule_and_writes_the_workdir_contract(trained):
    tmp_path, results = trained
    assert results["step"] == 150
    assert results["eval/top1"] > 0.85  # chance is 0.1 (57 of 64 with jax 0.10.2, flax 0.12.8)
    assert results["eval_ema/top1"] > 0.5  # the EMA is evaluated alongside the raw parameters
    train_losses = [r["train/loss"] for r in read_metrics(tmp_path) if "train/loss" in r]
    assert train_losses[-1] < 0.3 * math.log(10)  # well below chance's ln(10)

    assert json.loads((tmp_path / "results.json").read_text()) == pytest.approx(results)
    assert {"step", "eval/top1", "eval/top5", "eval/loss", "num_eval_examples", "wall_time_s"} <= set(results)
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["model"] == "cifar_resnet20" and record["batch_size"] == 16
    assert record["devices"]["num_devices"] == 8 and record["versions"]["jax"] == jax.__version__
    assert record["derived"]["per_device_batch"] == 2
    logged = read_metrics(tmp_path)
    assert all(isinstance(r["step"], int) for r in logged)
    train_record = next(r for r in logged if "train/loss" in r)
    for name in ("train/top1", "train/lr", "train/grad_norm", "train/grad_norm/layer1", "train/examples_per_sec"):
        assert name in train_record
    assert any("eval/top1" in r and r["step"] == 150 for r in logged)
    assert list(tmp_path.glob("events.out.tfevents.*")), "TensorBoard event file missing"
    assert checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step() == 150


def test_eval_and_eval_ema_are_the_saved_parameters_and_the_ema_on_every_eval_image(trained):
    """Recomputed here from the final checkpoint, outside the loop: the raw parameters give eval/*, the
    EMA parameters (with the same BN statistics) give eval_ema/*, over all 64 synthetic eval images."""
    workdir, results = trained
    tree = checkpoint.load_tree(workdir)
    config = tiny_config()
    split = synthetic.eval_split(config.seed, 64, 10, (8, 8, 3), config.synthetic.noise)
    images = (split["image"].astype(np.float32) - synthetic.PIXEL_ZERO) / synthetic.PIXEL_UNIT
    model = create_model("cifar_resnet20", num_classes=10)
    for prefix, params in (("eval", tree["params"]), ("eval_ema", tree["ema_params"])):
        logits = np.asarray(model.apply({"params": params, "batch_stats": tree["batch_stats"]}, images))
        shifted = logits - logits.max(1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        assert results[f"{prefix}/top1"] == np.mean(logits.argmax(1) == split["label"]), prefix
        loss = -np.mean(log_probabilities[np.arange(64), split["label"]])
        assert results[f"{prefix}/loss"] == pytest.approx(loss, rel=1e-4), prefix
    assert results["eval_ema/loss"] != results["eval/loss"]


def test_fine_tuning_loads_the_body_replaces_the_head_and_freezes_stages(trained, tmp_path):
    source, _ = trained
    config = tiny_config(num_train_steps=3, num_classes=7, init_from=str(source), freeze="stem")
    loop.train_and_evaluate(config, tmp_path)
    before, after = checkpoint.load_variables(source), checkpoint.load_variables(tmp_path)
    np.testing.assert_array_equal(after["params"]["conv1"]["kernel"], before["params"]["conv1"]["kernel"])
    for statistic in ("mean", "var"):  # the frozen stem ran as at inference: its BatchNorm statistics are the loaded
        np.testing.assert_array_equal(after["batch_stats"]["bn1"][statistic], before["batch_stats"]["bn1"][statistic])
        moved = after["batch_stats"]["layer3_0"]["bn1"][statistic], before["batch_stats"]["layer3_0"]["bn1"][statistic]
        assert not np.array_equal(*moved)
    loaded, trained = before["params"]["layer3_0"]["conv1"]["kernel"], after["params"]["layer3_0"]["conv1"]["kernel"]
    assert not np.array_equal(trained, loaded)
    # Loaded, then moved by 3 small steps; a fresh initialisation would be about sqrt(2) |loaded| away.
    assert np.linalg.norm(trained - loaded) < 0.2 * np.linalg.norm(loaded)
    assert after["params"]["fc"]["kernel"].shape[-1] == 7


def test_eval_counts_every_example_once_whatever_the_batch_size(tmp_path):
    """One trained state evaluated at two eval batch sizes: the second run resumes from the final
    checkpoint, so it only evaluates."""
    outcomes = []
    for eval_batch_size in (8, 24):  # 37 examples: neither divides it
        config = tiny_config(num_train_steps=2, eval_batch_size=eval_batch_size)
        config.synthetic.num_eval_examples = 37
        outcomes.append(loop.train_and_evaluate(config, tmp_path))
    assert [outcome["step"] for outcome in outcomes] == [2, 2]
    for outcome in outcomes:
        assert outcome["num_eval_examples"] == 37
        for name in ("eval/top1", "eval/top5", "eval/loss"):
            assert outcome[name] == pytest.approx(outcomes[0][name], abs=1e-6)
        assert outcome["eval/top1"] * 37 == pytest.approx(round(outcome["eval/top1"] * 37), abs=1e-4)


@pytest.mark.slow
def test_divergence_stops_with_a_clear_error_and_keeps_a_good_checkpoint(tmp_path):
    config = tiny_config(
        num_train_steps=12, schedule="piecewise", lr_boundaries=(4,), lr_decay_factor=1e12, log_every_steps=2
    )
    config.checkpoint_every_steps = 2
    with pytest.raises(loop.TrainingDiverged, match=r"diverged between steps \d+ and \d+.*last good checkpoint"):
        loop.train_and_evaluate(config, tmp_path)
    kept = checkpoint.load_variables(tmp_path)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(kept))
    last_good = checkpoint.Checkpointer(tmp_path / "checkpoints").latest_step()
    assert 0 < last_good < 12

    config.lr_decay_factor = 0.1  # the same command with a lower learning rate resumes from the good checkpoint
    results = loop.train_and_evaluate(config, tmp_path)
    assert results["step"] == 12 and np.isfinite(results["eval/loss"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_steps = [line["step"] for line in lines if "train/loss" in line]
    assert train_steps.count(2) == 1  # steps up to the good checkpoint were not trained again
    history = json.loads((tmp_path / "config.json").read_text())["resumed_with_changes"]
    assert history == [{"step": last_good, "changes": {"lr_decay_factor": [1e12, 0.1]}}]  # tuples are no change


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model": "resnet19"}, "model must be one of .* got 'resnet19'"),
        ({"dataset": "mnist_typo"}, "dataset must be one of .* got 'mnist_typo'"),
        ({"learning_rate": -0.1}, "learning_rate must be >= 0"),
        ({"batch_size": 100}, "not divisible by the 8 devices"),
        ({"eval_batch_size": 12}, "not divisible by the 8 devices"),
        ({"bn_group_size": 3}, "bn_group_size=3"),
        ({"num_train_steps": 0}, "set num_train_steps > 0 or num_epochs > 0"),
        ({"optimizer": "adam"}, "optimizer must be one of"),
        ({"freeze": "layer9"}, "unknown part.*layer9.*this model has stem, layer1, layer2, layer3, head"),
        ({"normalisation": "zca"}, "normalisation must be one of"),
        ({"train_crop": "centre"}, "train_crop must be one of"),
        ({"validation_examples": 100}, "validation_examples needs a TFDS dataset"),
        ({"pad_mode": "edge"}, "pad_mode must be one of"),
    ],
)
def test_bad_configs_fail_before_any_compilation(tmp_path, monkeypatch, fields, message):
    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before validating the config")

    monkeypatch.setattr(loop.jax, "jit", no_compiling)
    with pytest.raises(ValueError, match=message):
        loop.train_and_evaluate(tiny_config(**fields), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # a mistake leaves no workdir behind


class SteppedClock:
    """Stands in for the loop's ``time`` module: the first reading (the start) is 1000, every later one
    1000 + ``seconds``, so each process appears to run for exactly ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds, self.started = seconds, False

    def time(self) -> float:
        offset = self.seconds if self.started else 0.0
        self.started = True
        return 1000.0 + offset


def test_a_resumed_run_sums_its_wall_time_and_records_real_config_changes_only(tmp_path, monkeypatch):
    """results.json's wall_time_s sums every process's time, carried from one to the next in the checkpoint.
    Fields that a newer version added (in a group too) are no change at their defaults, and a change when
    set; a field that is gone is a change."""
    monkeypatch.setattr(loop, "time", SteppedClock(40.0))
    loop.train_and_evaluate(tiny_config(num_train_steps=4), tmp_path)
    record = json.loads((tmp_path / "config.json").read_text())
    del record["mixup_alpha"], record["cutout_size"], record["synthetic"]["noise"]  # before these fields existed
    record["stochastic_depth_survival"] = 0.5  # a field renamed since: its setting would be lost
    (tmp_path / "config.json").write_text(json.dumps(record))

    monkeypatch.setattr(loop, "time", SteppedClock(100.0))
    results = loop.train_and_evaluate(tiny_config(num_train_steps=8, cutout_size=2), tmp_path)  # resumes at 4
    assert checkpoint.Checkpointer(tmp_path / "checkpoints").wall_time_s(4) == 40.0
    assert results["wall_time_s"] == 140.0
    assert json.loads((tmp_path / "results.json").read_text())["wall_time_s"] == 140.0
    history = json.loads((tmp_path / "config.json").read_text())["resumed_with_changes"]
    changes = {"num_train_steps": [4, 8], "cutout_size": [None, 2], "stochastic_depth_survival": [0.5, None]}
    assert history == [{"step": 4, "changes": changes}]


def test_a_checkpoint_without_a_wall_time_record_counts_from_itself(tmp_path, monkeypatch, caplog):
    """A checkpoint written before the record existed: the resumed run counts from it, and says so."""
    monkeypatch.setattr(checkpoint, "WALL_TIME", "not_the_record")  # the first process leaves no record
    loop.train_and_evaluate(tiny_config(num_train_steps=4), tmp_path)
    monkeypatch.undo()
    monkeypatch.setattr(loop, "time", SteppedClock(100.0))
    with caplog.at_level("WARNING"):
        results = loop.train_and_evaluate(tiny_config(num_train_steps=8), tmp_path)
    assert results["wall_time_s"] == 100.0
    assert "predates wall-time records" in caplog.text


def slowed(make_train_step):
    """``make_train_step`` whose steps also multiply two 1024x1024 matrices that depend on the batch: the
    devices fall behind a host that does not wait for them."""

    def make(*args, **kwargs):
        train_step = make_train_step(*args, **kwargs)

        def step(state, batch):
            state, outputs = train_step(state, batch)
            matrix = jnp.full((1024, 1024), batch["image"].mean())
            busy = jnp.tanh(matrix @ matrix).sum()
            return state.replace(step=state.step + (busy * 0).astype(state.step.dtype)), outputs

        return step

    return make


def test_a_stop_signal_is_saved_within_a_few_steps_of_the_device_not_at_the_next_log_step(tmp_path, monkeypatch):
    """SIGTERM arrives once the device has finished step 6 of 60, with no log or checkpoint step before
    the last: the host, never more than MAX_STEPS_IN_FLIGHT steps ahead, checkpoints a step or two later,
    where a host that had dispatched every step it could (XLA:CPU queues up to 32 on one device) saved
    step 38. One device, as on a one-GPU machine: 8 CPU devices queue fewer steps."""
    make_mesh = sharding.make_mesh
    monkeypatch.setattr(sharding, "make_mesh", lambda devices=None: make_mesh(jax.devices()[:1]))
    monkeypatch.setattr(program, "make_train_step", slowed(program.make_train_step))
    finished: list[jax.Array] = []  # each dispatched step's ballot, ready once the device has run the step
    compile_programs = program.compile_programs

    def recording(*args, **kwargs):
        steps = compile_programs(*args, **kwargs)

        def train_steps(count):
            def train(*step_args):
                outputs = steps.train_steps(count)(*step_args)
                finished.append(outputs[-1])
                return outputs

            return train

        return dataclasses.replace(steps, train_steps=train_steps)

    training = threading.Event()
    training.set()

    def signal_after_step_6():
        deadline = time.monotonic() + 120
        while training.is_set() and time.monotonic() < deadline:
            if len(finished) >= 6 and finished[5].is_ready():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.001)

    monkeypatch.setattr(program, "compile_programs", recording)
    config = tiny_config(num_train_steps=60, log_every_steps=60, checkpoint_every_steps=60)
    sender = threading.Thread(target=signal_after_step_6)
    sender.start()
    try:
        results = loop.train_and_evaluate(config, tmp_path)
    finally:
        training.clear()
        sender.join()
    assert results.get("stopped") == "SIGTERM", results
    assert 6 <= results["checkpoint_step"] <= 6 + loop.MAX_STEPS_IN_FLIGHT + 1
