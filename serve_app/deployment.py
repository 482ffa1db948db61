"""The Ray Serve ingress deployment and the application builder `serve_app:app`."""

from __future__ import annotations

from typing import Any, Optional

import ray
from ray import serve
from ray.serve import Application

from cluster.settings import ON_HEAD_NODE, Settings
from serve_app.api import create_app
from serve_app.bind import check_bind, serve_host
from serve_app.dependencies import configure
from train_jobs.logs import configure_logging
from training_client.ray_token import create_private_token


# 0 CPUs: the replica only validates and dispatches, leaving every CPU to Ray Data and Ray Train; on the head node,
# beside Serve's proxy (HeadOnly), so a lost worker node does not take the API down with it.
@serve.deployment(ray_actor_options={"num_cpus": 0, "resources": ON_HEAD_NODE}, max_ongoing_requests=200,
                  logging_config={"enable_access_log": False})
@serve.ingress(create_app())
class TrainingModule:
    def __init__(self, settings: dict):
        config = Settings(**settings)
        configure_logging(config.log_level)
        check_bind(serve_host(), config)  # the host Serve really listens on, whatever the builder saw
        configure(config, restore=True)


def app(args: Optional[dict[str, Any]] = None) -> Application:
    """Builder for `serve run serve_app:app [storage_root=...] [max_upload_mb=...]` and config files.

    Refuses a host beyond loopback without an API token here already, so `serve run` stops before Ray starts."""
    settings = Settings.from_args(args)
    check_bind(serve_host(), settings)
    if not ray.is_initialized():  # `serve run serve_app:app` starts Ray after this: its token file, private
        create_private_token()
    return TrainingModule.bind(settings.model_dump())
