"""Start-up: JAX's persistent compilation cache is on by default and a second run compiles nothing."""

import json
import os
import subprocess
import sys

import jax
import pytest

from resnet_jax.train import compilation_cache


@pytest.fixture
def jax_settings(monkeypatch):
    """What ``compilation_cache.enable`` asks of JAX, recorded instead of applied."""
    settings = {}
    monkeypatch.setattr(jax.config, "update", lambda name, value: settings.__setitem__(name, value))
    return settings


def test_the_cache_defaults_to_the_user_cache_directory(jax_settings, monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache.enable("") == str(tmp_path / "resnet_jax" / "jax_compilation_cache")
    assert jax_settings == {
        "jax_compilation_cache_dir": str(tmp_path / "resnet_jax" / "jax_compilation_cache"),
        "jax_persistent_cache_min_compile_time_secs": 0.0,  # every program, however quick to compile
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }


def test_jaxs_variable_then_the_config_field_take_precedence_and_none_turns_it_off(jax_settings, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/from/the/environment")
    assert compilation_cache.enable("") == "/from/the/environment"
    assert compilation_cache.enable("gs://bucket/cache") == "gs://bucket/cache"
    jax_settings.clear()
    assert compilation_cache.enable("none") is None
    assert jax_settings == {}


@pytest.mark.slow
@pytest.mark.extended  # the restarts of test_resume and test_slurm run on the compilation cache too
def test_a_second_run_reads_every_executable_from_the_cache(tmp_path):
    cache = tmp_path / "cache"

    def run(name: str) -> str:
        """Run the command; its stderr, where JAX logs each persistent-cache hit and miss as a warning."""
        command = [
            sys.executable,
            "-m",
            "resnet_jax.main",
            "--config=configs/default.py",
            f"--workdir={tmp_path / name}",
            "--config.image_size=8",
            "--config.num_train_steps=4",
            "--config.eval_every_steps=4",
            "--config.synthetic.num_eval_examples=64",
            f"--config.compilation_cache_dir={cache}",
        ]
        environment = {**os.environ, "JAX_LOG_COMPILES": "1", "JAX_EXPLAIN_CACHE_MISSES": "1"}
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    first = run("first")
    written = {path: path.stat().st_mtime_ns for path in cache.glob("*-cache")}
    assert first.count("PERSISTENT COMPILATION CACHE MISS") >= 3  # the init, train and eval steps at least
    second = run("second")
    assert "PERSISTENT COMPILATION CACHE MISS" not in second, second[-3000:]  # nothing compiled again...
    assert second.count("Persistent compilation cache hit") >= len(written)  # ...every program was read
    assert {path: path.stat().st_mtime_ns for path in cache.glob("*-cache")} == written  # and none rewritten
    metrics = [json.loads(line) for line in (tmp_path / "second" / "metrics.jsonl").read_text().splitlines()]
    (startup,) = [line for line in metrics if "startup/total_s" in line]
    phases = ("launch", "data", "init", "first_step")
    assert startup["step"] == 1 and startup["startup/total_s"] == pytest.approx(
        sum(startup[f"startup/{phase}_s"] for phase in phases)
    )
