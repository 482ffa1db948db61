"""The session file's writer: the newest snapshot, persisted from a background thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from train_jobs.files import atomic_write_bytes


class LatestWriter:
    """Persists the newest snapshot of one file from a background thread.

    Writers hand over bytes and go on; snapshots that arrive while a write is in
    flight are coalesced, so a slow disk never holds up the caller. `flush(v)`
    waits until snapshot `v` (or a newer one) is durably on disk.
    """

    def __init__(self, path: Path):
        self.path = path
        self._cond = threading.Condition()
        self._pending: tuple[int, Optional[bytes]] | None = None
        self._submitted = 0
        self._written = 0
        self._error: Optional[BaseException] = None
        threading.Thread(target=self._run, name=f"writer:{path.name}", daemon=True).start()

    def submit(self, data: Optional[bytes]) -> int:
        """Queue `data` (None removes the file); returns its version for `flush`."""
        with self._cond:
            self._submitted += 1
            self._pending = (self._submitted, data)
            self._cond.notify_all()
            return self._submitted

    def flush(self, version: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._written >= version or self._error is not None)
            if self._error is not None:
                error, self._error = self._error, None
                raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None)
                version, data = self._pending
                self._pending = None
            try:
                if data is None:
                    self.path.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(self.path, data)
            except BaseException as e:  # surfaced to the next flush()
                with self._cond:
                    self._error = e
            with self._cond:
                self._written = version
                self._cond.notify_all()
