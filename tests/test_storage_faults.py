"""Storage faults through the real command: a full filesystem, a read-only workdir and a writer failing with
ENOSPC each end in one paragraph and a non-zero exit, and the next run resumes to bitwise the uninterrupted
result. The classifier is checked on the wordings of the native writers too."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_resume import assert_same, final_state, starts

from resnet_jax.errors import ExitCode

pytestmark = [pytest.mark.xdist_group("storage"), pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
FLAGS = [
    "--config=configs/default.py",
    "--config.image_size=8",
    "--config.batch_size=16",
    "--config.num_train_steps=30",
    "--config.log_every_steps=5",
    "--config.checkpoint_every_steps=10",
    "--config.eval_every_steps=1000",
    "--config.synthetic.num_eval_examples=32",
]
TIMEOUT_S = 240


def run(workdir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "resnet_jax.main", f"--workdir={workdir}", *FLAGS]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)


def the_paragraph(failed: subprocess.CompletedProcess) -> str:
    """The one 'error:' paragraph of a run that a storage fault ended (exit 2, no traceback)."""
    assert failed.returncode == ExitCode.USER_ERROR, failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr and "Event loop is closed" not in failed.stderr, failed.stderr[-3000:]
    (paragraph,) = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert re.search(r"resume with: \S*python\S* -m resnet_jax.main --workdir=", paragraph), paragraph
    return paragraph


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    assert run(workdir).returncode == 0
    return workdir


def mount(*options: str) -> bool:
    """Run mount(8); whether it worked (it needs root, and a container may forbid it)."""
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", *options], capture_output=True).returncode == 0


@pytest.fixture
def small_filesystem(tmp_path):
    """A 4 MB tmpfs: room for one checkpoint of this run and not two."""
    where = tmp_path / "small"
    where.mkdir()
    if not mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)):
        pytest.skip("cannot mount a tmpfs here (not root, or mount is not permitted); the ENOSPC writer test runs")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_a_full_filesystem_then_a_read_only_one_each_stop_with_a_paragraph_and_lose_nothing(
    small_filesystem, uninterrupted
):
    workdir = small_filesystem / "run"
    paragraph = the_paragraph(run(workdir))
    # The second checkpoint fills the disk; whichever write meets that first is named: the checkpoint's own, or
    # the lease's renewal beside it (seen in CI).
    failed_at = re.search(rf"storage failed at {re.escape(str(workdir))}/(checkpoints/20\.|lease\.json)", paragraph)
    assert failed_at and "No space left on device" in paragraph, paragraph
    assert "The last intact checkpoint is step 10" in paragraph
    unfinished = workdir / "checkpoints" / "20.orbax-checkpoint-tmp"
    left_unfinished = unfinished.exists()

    assert mount("-o", "remount,ro,size=64m", str(small_filesystem))  # the space came back, write access did not
    paragraph = the_paragraph(run(workdir))
    assert f"storage failed at {workdir}/lease.json: Read-only file system" in paragraph
    assert "The last intact checkpoint is step 10" in paragraph

    assert mount("-o", "remount,rw", str(small_filesystem))
    resumed = run(workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    removing = f"Removing {unfinished}: a checkpoint save that did not finish"
    assert (removing in resumed.stderr) == left_unfinished, resumed.stderr[-3000:]
    assert [start for start in starts(workdir)] == [(1, "init"), (11, "restore")]
    assert_same(final_state(workdir), final_state(uninterrupted), relative=0)


# The ENOSPC paragraph through the command: the tmpfs test above; without a checkpoint yet: test_storage; a rerun
# that ends as a lone run: test_resume.
@pytest.mark.extended
def test_a_writer_failing_with_enospc_stops_with_a_paragraph_and_the_rerun_ends_as_a_lone_run(tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "metrics.jsonl").symlink_to("/dev/full")  # every write to it fails with ENOSPC
    paragraph = the_paragraph(run(workdir))
    assert f"storage failed at {workdir}/metrics.jsonl: No space left on device" in paragraph
    assert "No checkpoint had been saved yet" in paragraph

    (workdir / "metrics.jsonl").unlink()
    resumed = run(workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same(final_state(workdir), final_state(uninterrupted), relative=0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders; the tmpfs test remounts instead")
def test_a_read_only_workdir_stops_with_a_paragraph(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    workdir.chmod(0o555)
    try:
        paragraph = the_paragraph(run(workdir))
    finally:
        workdir.chmod(0o755)
    assert f"storage failed at {workdir}/lease.json: Permission denied" in paragraph
