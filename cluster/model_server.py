"""The trained model as its own Ray Serve application: replicas load it once and batch concurrent calls.

Started by the ingress (cluster/serving.py) with no HTTP route: /predict reaches it through a handle.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ray import serve
from ray.serve import Application

from cluster.session_record import DeployOptions


@serve.deployment(name="model", max_ongoing_requests=64, logging_config={"enable_access_log": False})
class ModelServer:
    def __init__(self, model_dir: str, max_batch_size: int, batch_wait_timeout_s: float, num_cpus: float):
        from train_jobs.inference.predict import Predictor

        # Torch (or onnxruntime) threads = the replica's CPUs, so replicas and training do not fight over cores.
        self.predictor = Predictor(model_dir, threads=max(1, math.floor(num_cpus)))
        self.model_dir = model_dir
        self.run.set_max_batch_size(max_batch_size)
        self.run.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.latency, self.batch_size = predict_metrics()

    def describe(self) -> dict[str, Any]:
        return {**self.predictor.describe(), "model_dir": self.model_dir, "device": str(self.predictor.device)}

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def run(self, calls: list[tuple[str, list]]) -> list[list[dict]]:
        """Concurrent /predict calls (each a list of inputs of one kind) in one forward pass per kind."""
        results: list[list[dict]] = [[] for _ in calls]
        for kind in {kind for kind, _ in calls}:
            mine = [i for i, (k, _) in enumerate(calls) if k == kind]
            flat = [item for i in mine for item in calls[i][1]]
            answers = iter(self.predictor.predict(kind, flat))
            for i in mine:
                results[i] = [next(answers) for _ in calls[i][1]]
        return results

    async def predict(self, kind: str, items: list) -> list[dict]:
        started = time.perf_counter()
        answers = await self.run((kind, items))
        self.latency.observe(time.perf_counter() - started)  # the batch's wait included: what a caller waits
        self.batch_size.observe(len(items))
        return answers


def predict_metrics():
    """Prometheus metrics of /predict in this replica (Ray's metrics export, like cluster/metrics.py)."""
    from ray.util.metrics import Histogram

    latency = Histogram("tm_predict_latency_seconds", description="Seconds per /predict call in the model replica",
                        boundaries=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
    inputs = Histogram("tm_predict_inputs", description="Inputs per /predict call",
                       boundaries=[1, 2, 4, 8, 16, 32, 64, 128, 256])
    return latency, inputs


def model_app(model_dir: str, options: DeployOptions, use_gpu: bool) -> Application:
    autoscaling = {"min_replicas": options.min_replicas, "max_replicas": options.max_replicas,
                   "initial_replicas": max(1, options.min_replicas), "target_ongoing_requests": 4}
    actor = {"num_cpus": options.num_cpus, "num_gpus": 1 if use_gpu else 0}
    return ModelServer.options(autoscaling_config=autoscaling, ray_actor_options=actor).bind(
        model_dir, options.max_batch_size, options.batch_wait_timeout_s, options.num_cpus)
