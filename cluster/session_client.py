"""Awaitable calls to the session actor from a Serve replica, surviving an actor restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError

from cluster.session_actor import session_actor_handle
from cluster.settings import Settings


class SessionClient:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.handle = session_actor_handle(settings)

    async def call(self, method: Callable[[Any], Any]) -> Any:
        """`await client.call(lambda s: s.status.remote())`: the method is named where it is called."""
        try:
            return await method(self.handle)
        except (ActorDiedError, ActorUnavailableError):
            # Killed for good (or mid-restart): get or recreate it; it restores from disk.
            self.handle = session_actor_handle(self.settings)
            return await method(self.handle)
