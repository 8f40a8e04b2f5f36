"""The SIGKILL harness: 3 kills at random moments (checkpoint writes included), then bitwise equality, and each
step once in metrics.jsonl and in what TensorBoard shows."""

import json
import subprocess
import sys

import pytest

from experiments import kill_harness

# Its own worker, not in line behind the resume tests.
pytestmark = pytest.mark.xdist_group("kill_harness")
# The harness's own run, shortened for CI's budget: 3 kills need about 70 steps at one checkpoint every 10 (the
# recorded figures in experiments/results/ are the whole harness's 10 kills).
FLAGS = [
    flag
    for flag in kill_harness.DEFAULT_FLAGS
    if not flag.startswith(("--config.num_train_steps=", "--config.checkpoint_every_steps="))
] + ["--config.num_train_steps=100", "--config.checkpoint_every_steps=10"]


@pytest.mark.slow
# Outside CI's 15 minutes: a SIGKILL resumed bitwise is test_resume's hard kill and test_lean_runs' resumed run; a
# save killed mid-write is never picked up: test_checkpoint.
@pytest.mark.extended
def test_three_random_sigkills_and_restarts_end_bitwise_equal_to_an_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))  # restarts skip recompiling
    figures = kill_harness.run_harness(tmp_path, FLAGS, kills=3, seed=0)
    assert figures["kills"] == figures["restarts"] == 3, figures["restart_log"]
    assert figures["kills_during_checkpoint_write"] >= 1, figures["restart_log"]
    assert figures["every_restart_resumed_at_its_checkpoint"], figures  # not a fresh run from step 0
    # A restart cuts metrics.jsonl back to its checkpoint: the start-up records of processes killed before
    # they saved one go with their steps, and those left start one after another.
    starts = figures["start_steps"]
    assert starts[0] == 1 and starts == sorted(set(starts)) and len(starts) >= 2, figures["restart_log"]
    assert figures["bitwise_identical_state"], figures  # params, BN statistics, optimizer state, RNG, EMA
    assert figures["identical_eval_metrics"], figures
    assert figures["each_step_once_in_metrics_jsonl"], figures  # the steps redone after each kill, once
    assert figures["each_step_once_in_tensorboard"], figures  # and TensorBoard shows the resumed run's points
    assert kill_harness.passed(figures)


@pytest.mark.parametrize("failed", kill_harness.CHECKS)
def test_the_harness_command_exits_0_only_when_every_check_held(failed, tmp_path, monkeypatch, capsys):
    good = dict.fromkeys(kill_harness.CHECKS, True)
    for figures, code in ((good, 0), ({**good, failed: False}, 1)):
        monkeypatch.setattr(kill_harness, "run_harness", lambda *args, figures=figures: figures)
        with pytest.raises(SystemExit) as exit_info:
            kill_harness.main(["--workdir", str(tmp_path)])
        assert exit_info.value.code == code
        assert json.loads(capsys.readouterr().out) == figures


def test_a_restart_that_crashes_by_itself_fails_the_harness_with_its_log(tmp_path, monkeypatch):
    (tmp_path / "reference").mkdir()
    record = {"derived": {"num_train_steps": 100}, "checkpoint_every_steps": 10}
    (tmp_path / "reference" / "config.json").write_text(json.dumps(record))
    monkeypatch.setattr(kill_harness, "_run_to_end", lambda *args: None)  # the reference "trained"

    def crashing_run(workdir, flags, env):
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "harness.log").write_text("no checkpoint can be read\n")
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    monkeypatch.setattr(kill_harness, "_start", crashing_run)
    with pytest.raises(RuntimeError, match=r"exit code 3\):\nno checkpoint can be read"):
        kill_harness.run_harness(tmp_path, [], kills=2, seed=0, timeout_s=30)
