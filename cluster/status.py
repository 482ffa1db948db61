"""The server status dictionary every route returns, built from the session record."""

from __future__ import annotations

from typing import Optional

from cluster.session_record import SessionRecord, State


def status_of(record: Optional[SessionRecord]) -> dict:
    if record is None:
        return {"state": State.idle.value, "session_active": False, "model_ready": False,
                "message": "no active session; call /start_session", "error": None,
                "import": {"status": "not_started"}}
    training = record.training.model_dump(exclude={"history", "spec"})
    training["last_eval"] = record.training.history[-1] if record.training.history else None
    return {
        "state": record.state.value,
        "session_active": True,
        "session_id": record.session_id,
        "model_ready": record.model_ready,
        "message": record.message,
        "preprocess": record.preprocess.model_dump(),
        "training": training,
        "import": record.imports.model_dump(),
        "error": record.error,
    }
