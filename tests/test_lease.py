"""The workdir lease, object by object: refusal of a live holder, takeover of a dead or stale one, the
heartbeat, and the same on the emulated ``gs://`` bucket. The real command's double launch is in test_resume."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest
from etils import epath
from fake_gcs import FakeGCS

from resnet_jax.runtime import lease
from resnet_jax.runtime.lease import Holder, Lease, WorkdirInUse


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch):
    """One writer at a time here: a bucket write is read back after 0.2 s, not the 2 s a race needs."""
    monkeypatch.setattr(lease, "SETTLE_S", {"local": 0.0, "remote": 0.2})


@pytest.fixture(scope="module")
def bucket():
    with FakeGCS("leases"):
        yield "gs://leases"


@pytest.fixture(params=["local", "gs"])
def workdir(request, tmp_path):
    if request.param == "local":
        return epath.Path(tmp_path)
    path = epath.Path(f"{request.getfixturevalue('bucket')}/{request.node.name}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_holder(workdir: epath.Path, **fields) -> dict:
    """A lease.json as another run would have written it."""
    now = time.time()
    record = dict(host="node-a", pid=12345, process_started=None, started=now - 600, heartbeat=now, token="theirs")
    record.update(fields)
    (workdir / lease.LEASE_FILE).write_text(json.dumps(record))
    return record


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_lease_names_this_process_and_is_gone_after_release(workdir):
    mine = Lease(workdir, heartbeat_s=0.1)
    mine.acquire()
    try:  # read as another run reads it, while the heartbeat rewrites it every 0.1 s
        record = Lease(workdir).read()
        assert (record.host, record.pid) == (mine.host, os.getpid())
        assert record.token == mine.token and record.started <= record.heartbeat <= time.time()
        time.sleep(0.5)
        assert Lease(workdir).read().heartbeat > record.heartbeat  # it beats
    finally:
        mine.release()
    assert not (workdir / lease.LEASE_FILE).exists()


def test_a_live_run_on_this_host_is_refused_with_its_host_pid_and_start(workdir):
    first = Lease(workdir)
    first.acquire()
    try:
        with pytest.raises(WorkdirInUse) as refused:
            Lease(workdir).acquire()
    finally:
        first.release()
    message = str(refused.value)
    assert f"host {first.host}, pid {os.getpid()}, since " in message
    assert "another --workdir" in message and "SIGTERM" in message


def test_a_dead_process_on_this_host_is_taken_over_at_once_with_a_log_line(workdir, caplog):
    write_holder(workdir, host=lease.Lease(workdir).host, pid=dead_pid())
    mine = Lease(workdir, stale_after_s=3600)  # the heartbeat's age plays no part on the same host
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        mine.acquire()
    mine.release()
    assert time.monotonic() - started < 30
    assert "Taking over the lease" in caplog.text and "a run that is gone" in caplog.text


def test_a_reused_pid_is_not_mistaken_for_the_holder(tmp_path):
    workdir = epath.Path(tmp_path)
    this_process = lease.process_start_time(os.getpid())
    assert this_process is not None  # Linux's /proc says when each process started
    write_holder(workdir, host=Lease(workdir).host, pid=os.getpid(), process_started=this_process - 1)
    mine = Lease(workdir)
    mine.acquire()  # the pid is alive, but it is a younger process than the holder's
    mine.release()


def test_a_stale_heartbeat_from_another_host_is_taken_over_at_once(workdir, caplog):
    write_holder(workdir, heartbeat=time.time() - 600)
    with caplog.at_level(logging.WARNING):
        mine = Lease(workdir, host="node-b", stale_after_s=90)
        mine.acquire()
    assert json.loads((workdir / lease.LEASE_FILE).read_text())["token"] == mine.token
    mine.release()
    assert "its heartbeat has not moved for 90 s (host node-a, pid 12345" in caplog.text


def test_another_hosts_lease_that_stops_beating_is_taken_over_after_the_bound(workdir):
    write_holder(workdir)  # a fresh time stamp, but nothing refreshes it: the holder died just now
    mine = Lease(workdir, host="node-b", stale_after_s=2)
    started = time.monotonic()
    mine.acquire()
    mine.release()
    assert 1.5 < time.monotonic() - started < 30


def test_another_hosts_lease_that_beats_is_refused(workdir):
    theirs = Lease(workdir, host="node-a", heartbeat_s=0.2)
    theirs.acquire()
    try:
        with pytest.raises(WorkdirInUse, match="another run is using the workdir .*host node-a"):
            Lease(workdir, host="node-b", stale_after_s=20).acquire()
    finally:
        theirs.release()


def test_a_record_cut_short_by_a_crash_does_not_block(tmp_path):
    workdir = epath.Path(tmp_path)
    (workdir / lease.LEASE_FILE).write_text('{"host": "node-a", "pi')
    mine = Lease(workdir)
    mine.acquire()
    mine.release()


def test_a_run_whose_lease_was_taken_over_stops(tmp_path, monkeypatch):
    workdir = epath.Path(tmp_path)
    exits = []
    monkeypatch.setattr(lease, "exit_with_message", lambda message, code: exits.append((message, code)))
    mine = Lease(workdir, heartbeat_s=0.1)
    mine.acquire()
    write_holder(workdir, host="node-c", token="newer")  # another host judged this one stale and took over
    deadline = time.monotonic() + 30
    while not exits and time.monotonic() < deadline:
        time.sleep(0.05)
    mine.release()
    (message, code), *_ = exits
    assert code == 1 and "another run took over the workdir" in message and "host node-c" in message
    assert json.loads((workdir / lease.LEASE_FILE).read_text())["token"] == "newer"  # its lease is left alone


def test_the_holder_is_described_with_its_heartbeat_age():
    holder = Holder("node-a", 7, None, started=0.0, heartbeat=100.0, token="x")
    assert holder.describe(now=130.0).startswith("host node-a, pid 7, since 1970-01-01")
    assert holder.describe(now=130.0).endswith("(heartbeat 30 s ago)")


def test_a_record_rewritten_while_it_is_read_is_read_again_and_other_errors_are_raised(tmp_path, monkeypatch):
    """TensorFlow's gs:// reader raises "File contents are inconsistent" when a heartbeat replaced the object
    mid-read (seen in a CI-like run); the next read sees the new record."""
    write_holder(epath.Path(tmp_path), token="theirs")
    reads = []
    read_text = epath.Path.read_text

    def rewritten_twice(path, *args, **kwargs):
        reads.append(path)
        if len(reads) <= 2:
            raise RuntimeError(f"File contents are inconsistent for file: {path} @ 0.")
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(epath.Path, "read_text", rewritten_twice)
    assert Lease(epath.Path(tmp_path)).read().token == "theirs" and len(reads) == 3
    monkeypatch.setattr(epath.Path, "read_text", lambda *_: (_ for _ in ()).throw(RuntimeError("permission denied")))
    with pytest.raises(RuntimeError, match="permission denied"):
        Lease(epath.Path(tmp_path)).read()
