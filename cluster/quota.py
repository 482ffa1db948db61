"""The per-session storage quota (`max_session_storage_mb`): what a session's files take, and the refusal that
names what to delete."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cluster.layout import Layout
from cluster.session_record import SessionRecord
from train_jobs.errors import StorageFull

MB = 1 << 20


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 when it is gone); a file removed while counting is skipped."""
    total = 0
    for f in Path(path).rglob("*"):
        try:
            if f.is_file() and not f.is_symlink():
                total += f.stat().st_size
        except OSError:
            pass
    return total


def check_quota(r: SessionRecord, layout: Layout, quota_mb: Optional[float], action: str) -> None:
    """Refuse `action` (a new run, an upload) with 507 when the session's files already take its quota, naming
    its runs by size, oldest first, to delete with DELETE /runs/{key}/{run_id}."""
    if quota_mb is None:
        return
    used = tree_bytes(layout.session_dir(r.session_id))
    if used < quota_mb * MB:
        return
    sizes = [(run.run_id, tree_bytes(layout.run_dir(r.session_id, run.run_id))) for run in r.run_history]
    deletable = [f"{run_id} ({size / MB:.1f} MB)" for run_id, size in sizes
                 if size and not (r.deployment and r.deployment.run_id == run_id)]
    what = ("delete runs with DELETE /runs/{key}/{run_id}: " + ", ".join(deletable)) if deletable \
        else "no run holds files to free: upload a smaller dataset"
    raise StorageFull(f"cannot {action}: the session's files take {used / MB:.1f} MB of its "
                      f"{quota_mb:g} MB quota (max_session_storage_mb)", state=r.state.value, hint=what)
