"""The Ray dashboard tells sessions' runs apart: Ray Train's run records (its Train page) name each run after its
session, as the job actors are named. (Named to sort after test_flow.py, whose first preprocessing of the sentiment
sample must not find it cached: this module's shared trained session is the same sample.)"""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import driver_on_server_ray

# Prints Ray Train's runs as recorded by its state actor (what the dashboard's Train page shows): name and status.
TRAIN_RUNS = """
import json, sys, ray
from ray.train.v2._internal.state.state_actor import get_state_actor
ray.init(address=sys.argv[1], log_to_driver=False)
actor = get_state_actor()
runs = ray.get(actor.get_train_runs.remote()).values() if actor else []
print(json.dumps([{"name": r.name, "status": str(r.status)} for r in runs]))
"""


def test_ray_train_records_each_run_under_its_sessions_run_id(trained_sentiment, server):
    client, _ = trained_sentiment
    status = client.status()
    run_id = status["training"]["id"]
    assert run_id.startswith(status["session_id"][:8] + "-train-"), run_id
    address, env = driver_on_server_ray(server)
    out = subprocess.run([sys.executable, "-c", TRAIN_RUNS, address], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    runs = {r["name"]: r["status"] for r in json.loads(out.strip().splitlines()[-1])}
    assert run_id in runs, f"Ray Train's records name no run {run_id}: {runs}"
    assert runs[run_id].endswith("FINISHED"), runs
