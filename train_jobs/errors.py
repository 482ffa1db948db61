"""Errors the session raises; the HTTP layer maps each class to its status code.

Extra fields are keyword-only so the exceptions pickle across Ray calls
(BaseException pickles `args` plus `__dict__`).
"""

from __future__ import annotations

import errno
import os
from typing import Optional

# A write refused for want of space: the disk is full, or the user's quota is.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class SessionError(Exception):
    status_code = 400

    def __init__(self, message: str, *, state: Optional[str] = None, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.state = state
        self.hint = hint


class WrongKey(SessionError):
    status_code = 403


class Forbidden(SessionError):
    """A place the server's settings keep out of reach (a path outside the configured roots)."""

    status_code = 403


class NotFound(SessionError):
    status_code = 404


class WrongState(SessionError):
    status_code = 409


class TooLarge(SessionError):
    status_code = 413


class BadDataset(SessionError):
    status_code = 400


class StorageFull(SessionError):
    status_code = 507


def storage_full(exc: BaseException, root: str) -> Optional[StorageFull]:
    """The 507 for `exc` when it (or an error it was raised from) is a write refused for want of space under the
    storage `root`; None for any other error."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            where = f" (writing {exc.filename})" if exc.filename else ""
            return StorageFull(f"no space left under the storage root {root}: {os.strerror(exc.errno)}{where}; "
                               "nothing was changed",
                               hint=f"free space under {root} (old sessions, runs and caches, archives under "
                                    "models/) or move storage_root to a larger disk, then try again")
        exc = exc.__cause__ or exc.__context__
    return None


class RunEnded(Exception):
    """A training run that ended itself for a reason its message tells the user as is (the job reports it
    unchanged, not as the last line of a worker's traceback)."""


class CheckpointDidNotFit(RunEnded):
    """A checkpoint larger than the space left under the storage root."""


class InvalidParameters(SessionError):
    """422 with FastAPI's `detail` array shape, so clients parse one format."""

    status_code = 422

    def __init__(self, message: str, *, detail: Optional[list] = None, field: Optional[str] = None, **kwargs):
        super().__init__(message, **kwargs)
        loc = ["body", field] if field else ["body"]
        self.detail = detail or [{"loc": loc, "msg": message, "type": "value_error"}]
