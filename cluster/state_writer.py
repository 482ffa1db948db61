"""The session file's writer: state changes written at once, live progress from a background thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

from train_jobs.files import atomic_write_bytes

log = logging.getLogger(__name__)


class LatestWriter:
    """Persists the newest snapshot of one file.

    `write` is synchronous: a state change is on disk when it returns, or the caller
    gets the error (a full disk) and keeps its old state. `submit` hands live progress
    to a background thread and goes on, so a slow disk never holds up /status;
    snapshots queued while a write is in flight are coalesced, and one older than
    what is already on disk is dropped. A failed background write is logged only:
    the next state change writes the whole record again.
    """

    def __init__(self, path: Path):
        self.path = path
        self._cond = threading.Condition()
        self._disk = threading.Lock()  # one write at a time, so versions reach the disk in order
        self._pending: tuple[int, Optional[bytes]] | None = None
        self._version = 0
        self._written = 0
        self._submitted = 0  # the newest version handed to `submit`
        self._handled = 0  # the newest submitted version the background thread has written or dropped
        self._closed = False
        threading.Thread(target=self._run, name=f"writer:{path.name}", daemon=True).start()

    def write(self, data: Optional[bytes]) -> None:
        """Write `data` now (None removes the file); raises what the disk raised."""
        with self._disk:
            with self._cond:
                self._version += 1
                version = self._version
            self._store(data)
            self._written = version

    def submit(self, data: Optional[bytes]) -> None:
        """Queue `data` for the background thread."""
        with self._cond:
            self._version += 1
            self._submitted = self._version
            self._pending = (self._version, data)
            self._cond.notify_all()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every snapshot submitted so far is written or dropped; False if `timeout` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._handled >= self._submitted, timeout)

    def close(self) -> None:
        """End the background thread once what was submitted is handled (a wiped session's file is done with)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _store(self, data: Optional[bytes]) -> None:
        if data is None:
            self.path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(self.path, data)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                version, data = self._pending
                self._pending = None
            with self._disk:
                if version >= self._written:  # else a state change written since holds all this snapshot did
                    try:
                        self._store(data)
                        self._written = version
                    except Exception:
                        log.exception("could not write live progress to %s", self.path)
            with self._cond:
                self._handled = version
                self._cond.notify_all()
