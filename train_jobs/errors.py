"""Errors the session raises; the HTTP layer maps each class to its status code.

Extra fields are keyword-only so the exceptions pickle across Ray calls
(BaseException pickles `args` plus `__dict__`).
"""

from __future__ import annotations

from typing import Optional


class SessionError(Exception):
    status_code = 400

    def __init__(self, message: str, *, state: Optional[str] = None, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.state = state
        self.hint = hint


class WrongKey(SessionError):
    status_code = 403


class NotFound(SessionError):
    status_code = 404


class WrongState(SessionError):
    status_code = 409


class TooLarge(SessionError):
    status_code = 413


class BadDataset(SessionError):
    status_code = 400


class InvalidParameters(SessionError):
    """422 with FastAPI's `detail` array shape, so clients parse one format."""

    status_code = 422

    def __init__(self, message: str, *, detail: Optional[list] = None, field: Optional[str] = None, **kwargs):
        super().__init__(message, **kwargs)
        loc = ["body", field] if field else ["body"]
        self.detail = detail or [{"loc": loc, "msg": message, "type": "value_error"}]
