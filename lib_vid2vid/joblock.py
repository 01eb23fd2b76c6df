"""One writer per job folder: an OS-level lock on ``<job>/job.lock``, held for the whole run.

POSIX: ``flock(LOCK_EX | LOCK_NB)``. Windows: ``msvcrt.locking`` of one byte far past the file's text. Either
way the kernel drops the lock when the process ends, kill -9 included, so a stale lock cannot exist: the next
run takes it at once. The file is never deleted (deleting it would let two runs lock two different files);
while locked it holds the holder's PID, host name and start time, for the message a second run prints.

``flock`` locks also conflict between two opens in one process (two WebUI tabs, two API requests), and a
process-wide registry makes sure of that where a file system emulates ``flock`` with POSIX locks (NFS).
A file system that cannot lock at all (some network shares) gives a lock with a ``warning`` and no
protection, rather than no run.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .errors import Vid2VidError

LOCK_NAME = "job.lock"
_WINDOWS_BYTE = 1 << 30
"""Windows locks a byte range, and a locked range cannot be read: lock one byte far past the holder's text."""
_BUSY = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}

_held: set[str] = set()
_held_guard = threading.Lock()


class JobRunning(Vid2VidError):
    """Another run holds the job's lock."""

    def __init__(self, job_dir: Path, holder: dict[str, Any] | None):
        self.job_dir = job_dir
        self.holder = holder
        super().__init__(f"Job {job_dir.name} is running ({describe_holder(holder)}): wait for it to finish, or "
                         f"start a new job with --new (WebUI and API: the new_job setting)")


def describe_holder(holder: dict[str, Any] | None) -> str:
    """"PID 123 on host, started 2026-11-29 20:10:05" from a lock file's text."""
    if not holder:
        return "holder not known yet"
    parts = [f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}"]
    if holder.get("started"):
        parts.append(f"started {str(holder['started']).replace('T', ' ')}")
    return ", ".join(parts)


def read_holder(job_dir: str | Path) -> dict[str, Any] | None:
    """The PID, host and start time written by the last run that took the lock (None if unreadable)."""
    try:
        text = (Path(job_dir) / LOCK_NAME).read_text(encoding="utf-8").strip("\0 \n")
        data = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _busy_holder(job_dir: Path, wait_s: float = 1.0) -> dict[str, Any] | None:
    """The holder of a lock that is taken. A holder writes its description just after it locks (and a released
    lock file is empty), so an empty file means "locked a moment ago": read again for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        holder = read_holder(job_dir)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)


def is_locked(job_dir: str | Path) -> bool:
    """Whether a run holds ``job_dir``'s lock now (this process or another). Writes nothing: a job folder
    without a lock file is not locked, and the lock is only tried and let go."""
    path = Path(job_dir) / LOCK_NAME
    with _held_guard:
        if os.path.realpath(path) in _held:
            return True
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        except OSError:
            return False  # no lock file: never locked (or not readable: nothing to say)
        try:
            try:
                _lock(fd)
            except OSError as exc:
                return exc.errno in _BUSY
            _unlock(fd)
            return False
        finally:
            os.close(fd)


class JobLock:
    """The lock on one job folder; :meth:`release` (or the end of the process) frees it."""

    def __init__(self, path: Path, fd: int | None, warning: str = ""):
        self.path = path
        self._fd = fd
        self.warning = warning
        """Non-empty when the file system could not lock: the run goes on unprotected, and the log says so."""

    @classmethod
    def acquire(cls, job_dir: str | Path) -> JobLock:
        """Lock ``job_dir`` or raise :class:`JobRunning` naming the holder. Never waits."""
        job_dir = Path(job_dir)
        path = job_dir / LOCK_NAME
        key = os.path.realpath(path)
        with _held_guard:
            if key in _held:
                raise JobRunning(job_dir, read_holder(job_dir))
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            except OSError as exc:
                raise Vid2VidError(f"Cannot open {path} ({exc.strerror}): check that the job folder is "
                                   f"writable") from None
            try:
                _lock(fd)
            except OSError as exc:
                os.close(fd)
                if exc.errno in _UNSUPPORTED:
                    return cls(path, None, f"cannot lock {path} on this file system ({exc.strerror}): make sure "
                                           f"no other run writes into this job at the same time")
                if exc.errno in _BUSY:
                    raise JobRunning(job_dir, _busy_holder(job_dir)) from None
                raise Vid2VidError(f"Cannot lock {path} ({exc.strerror or exc})") from None
            _held.add(key)
        lock = cls(path, fd)
        lock._write_holder()
        return lock

    def _write_holder(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now().isoformat(timespec="seconds")}
        data = json.dumps(info).encode("utf-8")
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, data)
            os.ftruncate(self._fd, len(data))
        except OSError:
            pass  # the lock holds without its description

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with _held_guard:
            _held.discard(os.path.realpath(self.path))
            try:
                os.ftruncate(fd, 0)
                _unlock(fd)
            except OSError:
                pass
            finally:
                os.close(fd)  # closing drops the lock in any case

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:  # a job object dropped without close() must not keep its folder locked
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # OSError (EACCES) when another handle holds it

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError (EWOULDBLOCK) when held

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
