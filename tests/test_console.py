"""The main command's console: the run's own lines, not the libraries' INFO chatter."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from resnet_jax.console import LibraryInfoFilter

REPO = Path(__file__).resolve().parents[1]


def _record(pathname: str, level: int) -> logging.LogRecord:
    return logging.LogRecord("absl", level, pathname, 1, "message", None, None)


def test_library_info_lines_are_dropped_and_warnings_and_our_lines_kept():
    keep = LibraryInfoFilter().filter
    orbax = "/site-packages/orbax/checkpoint/checkpoint_manager.py"
    assert not keep(_record(orbax, logging.INFO))
    assert keep(_record(orbax, logging.WARNING))
    assert keep(_record(os.path.join(str(REPO), "resnet_jax", "train", "loop.py"), logging.INFO))
    assert keep(_record("/site-packages/clu/metric_writers/logging_writer.py", logging.INFO))


def test_a_short_run_prints_its_progress_and_results_in_a_few_lines(tmp_path):
    command = [
        sys.executable,
        "-m",
        "resnet_jax.main",
        "--config=configs/default.py",
        f"--workdir={tmp_path / 'run'}",
        "--config.image_size=8",
        "--config.num_train_steps=10",
        "--config.log_every_steps=5",
        "--config.eval_every_steps=10",
        "--config.checkpoint_every_steps=5",
        "--config.synthetic.num_eval_examples=64",
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stderr.splitlines()
    assert not [line for line in lines if "orbax" in line or "checkpoint_manager.py" in line]
    assert any("train/loss=" in line for line in lines) and any("eval/top1=" in line for line in lines)
    assert any("First step after" in line for line in lines)
    assert len(lines) <= 25, "\n".join(lines)  # before: 80 and more, two thirds of them orbax's
