"""Awaitable calls to the session actor from the replica, surviving an actor restart."""

from __future__ import annotations

from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError

from cluster.session_actor import session_actor_handle
from cluster.settings import Settings


class SessionClient:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._handle = session_actor_handle(settings)

    async def call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._handle, method).remote(*args)
        except (ActorDiedError, ActorUnavailableError):
            # Killed for good (or mid-restart): get or recreate it; it restores from disk.
            self._handle = session_actor_handle(self.settings)
            return await getattr(self._handle, method).remote(*args)
