"""The CLI's tables: the session's runs, the server's sessions."""

from __future__ import annotations

import time


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def runs_table(runs: list[dict]) -> str:
    """One line a run: id, state, when it started and ended, the selected metric's best value."""
    def selected(s):
        return f"{s['metric']} {s['value']:.4f} ({s['split']})" if s and s.get("value") is not None else "-"
    lines = [f"{'run':<28} {'state':<8} {'started':<19} {'ended':<19} selected"]
    lines += [f"{r['run_id']:<28} {r['state']:<8} {when(r['started_at']):<19} {when(r['finished_at']):<19} "
              f"{selected(r['selected'])}{'  (deployed)' if r.get('deployed') else ''}" for r in runs]
    return "\n".join(lines)


def sessions_table(listing: dict) -> str:
    """One line a session: id, state, when it started and was last used, its runs."""
    lines = [f"{len(listing['sessions'])} of at most {listing['max_sessions']} sessions",
             f"{'session':<32} {'state':<13} {'started':<19} {'last used':<19} runs"]
    lines += [f"{s['session_id']:<32} {s['state']:<13} {when(s['created_at']):<19} {when(s['touched_at']):<19} "
              f"{s['runs']}{'  (deployed)' if s.get('deployed') else ''}" for s in listing["sessions"]]
    return "\n".join(lines)
