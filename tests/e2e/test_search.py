"""A hyper-parameter search with Ray Tune through `serve run`: trials, the best one kept, a stop ends it all."""

from __future__ import annotations

import csv
import json

from conftest import TINY_MODEL
from data import sentiment_files
from helpers import expect_error, extract, new_session, wait_for

SPACE = {"learning_rate": [1e-4, 3e-3]}


def searching_session(server, tmp_path, **config):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, batch_size=16, eval_metrics=["accuracy", "f1"], **config)
    client.upload_dataset(*sentiment_files(tmp_path))
    client.preprocess()
    client.wait_preprocessed()
    return client


def test_a_search_runs_its_trials_and_keeps_the_best(server, tmp_path):
    client = searching_session(server, tmp_path, epochs=2, search={"trials": 3, "space": SPACE, "scheduler": "fifo"})
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    trials = final["training"]["trials"]
    assert len(trials) == 3 and {t["state"] for t in trials} == {"TERMINATED"}
    assert all(SPACE["learning_rate"][0] <= t["config"]["learning_rate"] <= SPACE["learning_rate"][1] for t in trials)
    best = max(trials, key=lambda t: t["best"])
    model = extract(client.download_model(tmp_path / "m.tar.gz"), tmp_path / "m") / "model"
    archived = json.loads((model / "training_config.json").read_text())
    assert archived["hyperparameters"]["learning_rate"] == best["config"]["learning_rate"]
    assert archived["selected"]["value"] == best["best"] == final["metrics"]["selected"]["value"]
    results = extract(client.download_results(tmp_path / "r.tar.gz"), tmp_path / "r") / "results"
    table = list(csv.DictReader(open(results / "trials.csv")))
    assert sorted(float(r["learning_rate"]) for r in table) == sorted(t["config"]["learning_rate"] for t in trials)
    assert (results / "trials.png").read_bytes()[:4] == b"\x89PNG"
    assert (results / "predictions.csv").is_file() and final["metrics"]["split"] == "test"


# A trial that ASHA stops is killed with its Ray Train run, whose workers' placement group stays reserved:
# the next trial frees it first. Here on a Ray instance of its own: a group left by "a killed run" of this
# job, one of Tune's trial groups (memory only) and one of another job.
LEAK = """
import json, time, ray
from ray.util.placement_group import placement_group, placement_group_table
from train_jobs.training.search import free_stopped_trials_workers

ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never another server's Ray
leaked, tune_group = placement_group([{"CPU": 2}]), placement_group([{"memory": 1}])
assert leaked.wait(30) and tune_group.wait(30)
freed = free_stopped_trials_workers()
states = {g.id.hex(): placement_group_table(g)["state"] for g in (leaked, tune_group)}
deadline = time.monotonic() + 30  # the CPUs come back as the raylet hears of the removal
while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps({"freed": freed, "leaked": states[leaked.id.hex()], "tune": states[tune_group.id.hex()],
                  "cpus_free": ray.available_resources().get("CPU", 0)}))
ray.shutdown()
"""


def test_a_killed_trials_workers_are_freed_for_the_next_trial():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", LEAK], capture_output=True, text=True, timeout=180, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"freed": 1, "leaked": "REMOVED", "tune": "CREATED", "cpus_free": 2.0}


def test_a_stop_ends_the_whole_search(server, tmp_path):
    client = searching_session(server, tmp_path, epochs=200, search={"trials": 4, "space": SPACE})
    client.start_training()
    wait_for(lambda: client.monitor()["training"]["live"].get("step"), 120, "the first trial's first step")
    client.stop_training()
    final = wait_for(lambda: (m := client.monitor())["state"] != "training" and m, 120, "the search to stop")
    assert final["state"] == "stopped", final
    assert len(final["training"]["trials"]) < 4
    # The search gave its CPUs back: a plain run after it gets them.
    client.set_parameters(search=None, epochs=1)
    assert client.preprocess()["state"] == "preprocessed"  # a cache hit
    client.start_training()
    after = wait_for(lambda: (m := client.monitor())["state"] != "training" and m, 180, "a run after the search")
    assert after["state"] == "trained", after


def test_a_search_without_validation_data_is_refused(server, tmp_path):
    client = searching_session(server, tmp_path, validation_split=0, search={"trials": 2, "space": SPACE})
    err = expect_error(422, client.start_training)
    assert "validation" in err.body["message"]
    assert client.status()["state"] == "preprocessed"
