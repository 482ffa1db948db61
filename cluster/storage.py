"""Atomic file writes: a crash mid-write never leaves a half-written file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file (mode 0600), fsync, and rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, default=str).encode())


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def is_inside(path: Path, root: Path) -> bool:
    """True when `path` (symlinks resolved) lies inside `root`."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


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
