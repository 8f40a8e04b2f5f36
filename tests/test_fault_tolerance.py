"""The SIGKILL harness: 10 kills at random moments (checkpoint writes included), then bitwise equality."""

import pytest

from experiments import kill_harness

pytestmark = pytest.mark.xdist_group("resume")  # shares a worker with the other kill-and-resume tests


def test_ten_random_sigkills_and_restarts_end_bitwise_equal_to_an_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))  # restarts skip recompiling
    figures = kill_harness.run_harness(tmp_path, kill_harness.DEFAULT_FLAGS, kills=10, seed=0)
    assert figures["kills"] == figures["restarts"] == 10, figures["restart_log"]
    assert figures["kills_during_checkpoint_write"] >= 1, figures["restart_log"]
    assert figures["bitwise_identical_parameters"], figures
    assert figures["identical_eval_metrics"], figures
