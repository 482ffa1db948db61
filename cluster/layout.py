"""The storage layout: every path under the storage root, and only here.

On a multi-node cluster the root is shared storage (NFS, a mounted bucket), so
every node computes the same paths from the same settings.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Optional

from train_jobs.errors import InvalidParameters
from train_jobs.files import is_inside


class Layout:
    def __init__(self, root: Path):
        self.root = Path(root)

    # ---- the session ----------------------------------------------------------------
    @property
    def legacy_state_file(self) -> Path:
        """Where the one session's record was kept before the server held several (read once, then moved)."""
        return self.root / "session.json"

    def state_file(self, session_id: str) -> Path:
        """The session's record, beside its folder: a wipe removes the folder first, the record last."""
        return self.sessions_dir / f"{session_id}.json"

    def state_files(self) -> list[Path]:
        return sorted(self.sessions_dir.glob("*.json")) if self.sessions_dir.is_dir() else []

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    def session_dir(self, session_id: str) -> Path:
        return self.sessions_dir / session_id

    def staging_dir(self, session_id: str) -> Path:
        """A fresh folder an upload is written to before it is checked."""
        return self.session_dir(session_id) / f".staging-{uuid.uuid4().hex}"

    def new_dataset_dir(self, session_id: str) -> Path:
        return self.session_dir(session_id) / f"dataset-{uuid.uuid4().hex[:8]}"

    # ---- a training run -------------------------------------------------------------
    def run_dir(self, session_id: str, run_id: str) -> Path:
        return self.session_dir(session_id) / "runs" / run_id

    def run_storage(self, session_id: str, run_id: str) -> Path:
        """Ray Train's storage for the run (RunConfig storage_path/name): its checkpoints."""
        return self.run_dir(session_id, run_id) / run_id

    def search_dir(self, session_id: str, run_id: str) -> Path:
        """A hyper-parameter search's trials (Ray Tune's storage), one folder each."""
        return self.run_dir(session_id, run_id) / "search"

    def outcome_file(self, session_id: str, run_id: str) -> Path:
        """How the run ended (state, metrics, artifact paths): the job writes it before telling the session."""
        return self.run_dir(session_id, run_id) / "outcome.json"

    def results_dir(self, session_id: str, run_id: str) -> Path:
        return self.run_dir(session_id, run_id) / "results"

    def model_archive(self, session_id: str, run_id: str, fmt: str = "torch") -> Path:
        """The model's download: the trained directory (torch), or an export (onnx, onnx-int8)."""
        return self.run_dir(session_id, run_id) / ("model.tar.gz" if fmt == "torch" else f"model-{fmt}.tar.gz")

    def model_export(self, session_id: str, run_id: str, fmt: str) -> Path:
        """The run's model exported as `fmt` (model.onnx, tokenizer, export_check.json): per run, so a new run
        never finds the last one's."""
        return self.run_dir(session_id, run_id) / "exports" / fmt

    def results_archive(self, session_id: str, run_id: str) -> Path:
        return self.run_dir(session_id, run_id) / "results.tar.gz"

    # ---- the preprocessing cache ------------------------------------------------------
    def cache_dir(self, configured: Optional[str] = None) -> Path:
        """`cache_dir` from the config (relative to the root), or <root>/cache; refused outside the root."""
        if configured is None:
            return self.root / "cache"
        path = Path(configured)
        path = path if path.is_absolute() else self.root / path
        if not is_inside(path, self.root):
            raise InvalidParameters(
                f"cache_dir {configured!r} resolves outside the storage root {self.root}; "
                "give a path inside it (relative paths are taken from the root)", field="cache_dir")
        return path

    # ---- models -----------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_upload(self) -> Path:
        """Where an uploaded model archive is staged until its import ends."""
        return self.models_dir / ".uploads" / f"{uuid.uuid4().hex}.archive"

    def catalogue_archive(self, name: str, sha256: str, tokenizer: bool) -> Path:
        suffix = "with-tokenizer" if tokenizer else "weights"
        return self.models_dir / ".archives" / f"{name}-{sha256[:16]}-{suffix}.tar.gz"

    @property
    def default_import_root(self) -> Path:
        return self.root / "imports"
