"""Training workers yield the CPU to the API: SCHED_IDLE, or nice 19 where that does not exist."""

from __future__ import annotations

import os
from pathlib import Path


def lower_priority(enabled: bool) -> None:
    """Run every thread of this worker under SCHED_IDLE (or at nice 19 where that does not exist).

    Training then takes every idle cycle but yields at once to the API, the session
    actor and Ray's own processes, so /status stays fast while training fills the CPUs.
    Threads started later (torch's pool, data prefetch) inherit the policy.
    """
    if not enabled:
        return
    tasks = Path("/proc/self/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
        try:
            if hasattr(os, "SCHED_IDLE"):
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            else:
                os.setpriority(os.PRIO_PROCESS, tid, 19)
        except OSError:
            pass  # a thread that ended meanwhile
