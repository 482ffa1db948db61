"""The imported models' catalogue as the routes read it (GET /imported_model/{key}): an entry, its archive."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cluster.layout import Layout
from cluster.session_client import SessionClient
from cluster.tasks import build_catalogue_archive_task
from train_jobs.errors import NotFound
from train_jobs.models.importer import catalogue


class CatalogueCases:
    def __init__(self, session: SessionClient, layout: Layout):
        self.session, self.layout = session, layout

    async def entry(self, key: str, model_name: Optional[str]) -> dict:
        """The catalogue entry of `model_name`, or of the session's last import."""
        last = await self.session.call(lambda s: s.last_import.remote(key))
        name = model_name or last
        entries = {e["name"]: e for e in catalogue(self.layout.models_dir)}
        if name not in entries:
            raise NotFound(f"no imported model {name!r}" if name else "no model imported in this session yet",
                           hint=f"import one with /import_model/{{key}}; the catalogue has {sorted(entries)}")
        return entries[name]

    async def archive(self, entry: dict, tokenizer: bool) -> Path:
        dest = self.layout.catalogue_archive(entry["name"], entry.get("sha256", "unhashed"), tokenizer)
        if not dest.is_file():
            await build_catalogue_archive_task.remote(entry["path"], str(dest), tokenizer)
        return dest
