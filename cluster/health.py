"""What /healthcheck checks: the session actor answers, its recovery after a restart is done, the storage root
takes a write. Each check says what it found; a check that does not answer in time fails."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from cluster.session_client import SessionClient

WAIT_S = 10.0  # a check that has not answered within this fails
STORAGE_PROBE_S = 5.0  # a successful write probe is reused this long (a failed one never), so probes stay cheap


def _check(ok: bool, message: str) -> dict:
    return {"ok": bool(ok), "message": message}


def _why(e: BaseException) -> str:
    return f"no answer within {WAIT_S:g} s" if isinstance(e, asyncio.TimeoutError) else f"{type(e).__name__}: {str(e)[:300]}"


def probe_write(root: Path) -> None:
    """Write a few bytes under `root` and remove them: what every state change needs."""
    probe = root / f".healthcheck-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as f:
            f.write(b"ok")
    finally:
        probe.unlink(missing_ok=True)


class ServerHealth:
    def __init__(self, session: SessionClient, root: Path):
        self.session, self.root = session, root
        self._storage_ok_at = -STORAGE_PROBE_S

    async def check(self) -> tuple[bool, dict]:
        """(healthy, body): the session's status when its actor answered, `healthy`, `message`, and `checks`."""
        checks: dict[str, dict] = {}
        status: dict = {}
        try:
            answer = await asyncio.wait_for(self.session.call(lambda s: s.health.remote()), WAIT_S)
            status = answer["status"]
            checks["session_actor"] = _check(True, "the session actor answers")
            checks["recovery"] = _check(answer["recovered"], "the jobs a restart interrupted are recorded" if
                                        answer["recovered"] else "the session actor could not record the jobs a "
                                        "restart interrupted (it tries again at each /status; its log says why)")
        except Exception as e:  # what the call raised, or a time-out: the actor is dead, restarting or stuck
            checks["session_actor"] = _check(False, f"the session actor cannot be reached ({_why(e)})")
        checks["storage"] = await self._storage()
        healthy = all(c["ok"] for c in checks.values())
        message = ("the server, its session actor and the storage root work" if healthy else
                   "; ".join(c["message"] for c in checks.values() if not c["ok"]))
        return healthy, {**status, "healthy": healthy, "message": message, "checks": checks}

    async def _storage(self) -> dict:
        if time.monotonic() - self._storage_ok_at >= STORAGE_PROBE_S:
            try:
                await asyncio.wait_for(asyncio.to_thread(probe_write, self.root), WAIT_S)
            except Exception as e:
                return _check(False, f"the storage root {self.root} takes no write ({_why(e)})")
            self._storage_ok_at = time.monotonic()
        return _check(True, f"the storage root {self.root} takes a write")
