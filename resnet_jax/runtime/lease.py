"""One live run per workdir: ``workdir/lease.json`` names the process that holds it.

Process 0 of a run takes the lease before anything is compiled or written, and refreshes its
heartbeat every ``HEARTBEAT_S`` seconds from a thread. A second run on the same workdir is refused
with a paragraph naming the holder. A dead holder never blocks a restart for long:
- on the same host, a holder whose process is gone (or whose pid now belongs to a younger process)
  is taken over at once;
- from another host, the lease is taken over once its heartbeat has not moved for ``STALE_AFTER_S``
  seconds (at once if its time stamp is already that old), so a requeued job waits at most that long.

On a local disk the lease file is created exclusively (``O_EXCL``). A bucket (``gs://``) has no such
call through ``epath``, so there the lease is written, left to settle and read back: of two launches
racing within the settle time, the one whose token is read back wins, and the heartbeat thread of the
other sees the foreign token and stops its process.
"""

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import jax
from absl import logging
from etils import epath

from resnet_jax.errors import UserError
from resnet_jax.runtime import processes
from resnet_jax.runtime.preemption import exit_with_message

LEASE_FILE = "lease.json"
HEARTBEAT_S = 15.0
STALE_AFTER_S = 90.0  # a requeued job on another host waits at most this long for a dead run's lease
SETTLE_S = {"local": 0.0, "remote": 2.0}  # how long a bucket write is left before it is read back
POLL_S = 1.0
UNREADABLE = "unreadable"  # what ``Lease.read`` returns for a record cut short
# TensorFlow's gs:// reader refuses an object rewritten while it reads it ("File contents are inconsistent"): the
# holder's heartbeat did that, and a read a moment later sees the new record.
REWRITTEN_WHILE_READ, READ_TRIES = "contents are inconsistent", 5


class WorkdirInUse(UserError, RuntimeError):
    """Another live run holds the workdir's lease."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lease: where, which process, since when, and its last heartbeat (Unix seconds)."""

    host: str
    pid: int
    process_started: int | None  # the kernel's start time of ``pid`` (clock ticks), to tell a reused pid
    started: float
    heartbeat: float
    token: str

    def describe(self, now: float) -> str:
        """'host H, pid P, since DATE (heartbeat N s ago)'."""
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.started))
        return f"host {self.host}, pid {self.pid}, since {since} (heartbeat {max(0.0, now - self.heartbeat):.0f} s ago)"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onward of ``/proc/PID/stat`` (after the command name, which may hold spaces); None off Linux
    or once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of process ``pid`` in clock ticks (Linux); None where /proc does not say."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat(5)


def is_running_here(holder: Holder) -> bool:
    """Whether ``holder``'s process (on this host) is still alive: not gone, not a zombie, not a reused pid."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    fields = _stat_fields(holder.pid)
    if fields is None:
        return True  # no /proc to ask: a process that answers the signal is taken to be the holder
    is_zombie, started = fields[0] == "Z", int(fields[19])
    return not is_zombie and (holder.process_started is None or started == holder.process_started)


class Lease:
    """The lease on ``workdir`` for this process (``host`` is the machine's name unless given)."""

    def __init__(
        self,
        workdir: str | os.PathLike,
        host: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        settle_s: float | None = None,
    ):
        self.path = epath.Path(workdir) / LEASE_FILE
        self.remote = "://" in os.fspath(workdir)
        self.host = host or socket.gethostname()
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.settle_s = SETTLE_S["remote" if self.remote else "local"] if settle_s is None else settle_s
        self.token = uuid.uuid4().hex
        self._started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> "Holder | None | str":
        """The current holder; None when there is no lease, ``UNREADABLE`` for a record cut short. A record that
        a heartbeat rewrote while it was read is read again (``READ_TRIES`` reads in all)."""
        for _ in range(READ_TRIES - 1):
            try:
                return self._read_once()
            except Exception as error:  # noqa: BLE001 (TensorFlow's errors are not OSErrors)
                if REWRITTEN_WHILE_READ not in str(error):
                    raise
            time.sleep(0.05)
        return self._read_once()

    def _read_once(self) -> "Holder | None | str":
        try:
            return Holder(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return UNREADABLE

    def _record(self) -> str:
        pid = os.getpid()
        mine = Holder(self.host, pid, process_start_time(pid), self._started, time.time(), self.token)
        return json.dumps(dataclasses.asdict(mine), indent=2) + "\n"

    def _write(self, text: str) -> None:
        """Replace the record whole: a reader never sees half of it (on a bucket every write is whole)."""
        if self.remote:
            self.path.write_text(text)
            return
        partial = self.path.with_name(f"{LEASE_FILE}.{self.token}.tmp")
        partial.write_text(text)
        partial.replace(self.path)

    def acquire(self) -> None:
        """Take the lease, taking over a dead holder's, or raise ``WorkdirInUse``; starts the heartbeat."""
        for _ in range(5):  # a takeover or a vanished lease is tried again, a bounded number of times
            holder = self.read()
            if holder is UNREADABLE:  # being written, or cut short by a crash: look again once it settles
                time.sleep(max(self.settle_s, 0.5))
                if self.read() is UNREADABLE:
                    self.path.unlink(missing_ok=True)
            elif holder is not None and self._is_dead(holder) and self.read() == holder:
                self.path.unlink(missing_ok=True)
            if self._create():
                self._thread = threading.Thread(target=self._beat, name="workdir-lease", daemon=True)
                self._thread.start()
                return
        raise WorkdirInUse(
            f"could not take the lease {self.path}: other runs keep taking it. Make sure one run uses this "
            "workdir, then re-run the command."
        )

    def _create(self) -> bool:
        """Write our record if no lease exists; whether we hold the lease afterwards."""
        if not self.remote:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "w") as file:
                file.write(self._record())
            return True
        if self.read() is not None:
            return False
        self._write(self._record())
        time.sleep(self.settle_s)
        holder = self.read()
        return isinstance(holder, Holder) and holder.token == self.token

    def _is_dead(self, holder: Holder) -> bool:
        """True if ``holder`` is dead (the takeover is logged), False if the lease changed hands meanwhile;
        raises ``WorkdirInUse`` if it is alive."""
        if holder.host == self.host:
            if is_running_here(holder):
                self._refuse(holder)
            logging.warning(
                "Taking over the lease %s of a run that is gone (%s).", self.path, holder.describe(time.time())
            )
            return True
        deadline = time.monotonic() + self.stale_after_s - max(0.0, time.time() - holder.heartbeat)
        if time.monotonic() < deadline:
            logging.warning(
                "The workdir's lease is held by %s; waiting up to %.0f s for its heartbeat.",
                holder.describe(time.time()),
                deadline - time.monotonic(),
            )
        while time.monotonic() < deadline:
            time.sleep(min(POLL_S, self.heartbeat_s))
            now = self.read()
            if not isinstance(now, Holder) or now.token != holder.token:
                return False  # released, or taken by someone else: the caller tries again
            if now.heartbeat != holder.heartbeat:
                self._refuse(now)
        logging.warning(
            "Taking over the lease %s: its heartbeat has not moved for %.0f s (%s).",
            self.path,
            self.stale_after_s,
            holder.describe(time.time()),
        )
        return True

    def _refuse(self, holder: Holder) -> None:
        raise WorkdirInUse(
            f"another run is using the workdir {self.path.parent}: {holder.describe(time.time())}. Two runs "
            "on one workdir would overwrite each other's checkpoints. Wait for it to finish, stop it (SIGTERM "
            "saves a checkpoint) and re-run this command to resume, or give this run another --workdir."
        )

    def _beat(self) -> None:
        """Refresh the heartbeat until released; stop the process if another run has taken the lease."""
        failed = False
        while not self._stop.wait(self.heartbeat_s):
            holder = self.read()
            if isinstance(holder, Holder) and holder.token != self.token:
                exit_with_message(
                    f"error: another run took over the workdir {self.path.parent} ({holder.describe(time.time())}) "
                    "while this one was running; this run stops so that one run writes there.",
                    1,
                )
                return
            try:
                self._write(self._record())
                failed = False
            except OSError as error:
                if not failed:
                    logging.warning("Could not refresh the lease %s (%s); retrying.", self.path, error)
                failed = True

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self.read()
        if isinstance(holder, Holder) and holder.token == self.token:
            self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def held(workdir: epath.Path) -> Iterator[None]:
    """Hold ``workdir``'s lease for the block (process 0 takes it; every process learns whether it did)."""
    lease, refused = None, None
    if jax.process_index() == 0:
        lease = Lease(workdir)
        try:
            lease.acquire()
        except Exception as error:  # noqa: BLE001 (a refusal or a storage fault: the others must hear of it first)
            lease, refused = None, error
    if not processes.on_every_process(refused is None):
        raise refused or WorkdirInUse(f"process 0 could not take the lease on {workdir}; its log says why.")
    try:
        yield
    finally:
        if lease is not None:
            lease.release()
