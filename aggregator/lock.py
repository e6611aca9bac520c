"""One fetching process per archive at a time.

We chose a whole-run lock over claiming sources one by one: it is an
advisory `flock` on `<archive>.lock`, which the kernel releases when the
process ends however it ends (even SIGKILL), so a stale lock cannot exist
and nothing has to expire. A second `ipnews fetch` started while a run
is still going (cron overlapping a slow run, or the daemon) exits at once
with status 0 and a note; the next cron tick polls what is due then.
See docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .exceptions import StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


class AlreadyRunning(Exception):
    """Another process holds the fetch lock on this archive."""

    def __init__(self, path: Path, holder: str):
        self.path = path
        self.holder = holder
        super().__init__(f"another ipnews run ({holder}) is fetching into this archive; skipping this run")


def lock_path_for(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".lock")


@contextlib.contextmanager
def fetch_lock(db_path: str | Path) -> Iterator[None]:
    """Hold the archive's fetch lock, or raise AlreadyRunning at once (never wait)."""
    path = lock_path_for(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    except OSError as e:
        raise StorageError(f"{path}: cannot create the run lock next to the archive: {e.strerror or e}") from e
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown process"
                raise AlreadyRunning(path, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
