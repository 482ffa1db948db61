"""The run history's use cases (GET/DELETE /runs/...): each one call to the session actor, which owns the runs."""

from __future__ import annotations

from cluster.session_client import SessionClient


class RunHistoryCases:
    def __init__(self, session: SessionClient):
        self.session = session

    async def list(self, key: str) -> dict:
        return await self.session.call(lambda s: s.list_runs.remote(key))

    async def get(self, key: str, run_id: str) -> dict:
        return await self.session.call(lambda s: s.get_run.remote(key, run_id))

    async def delete(self, key: str, run_id: str) -> dict:
        return await self.session.call(lambda s: s.delete_run.remote(key, run_id))
