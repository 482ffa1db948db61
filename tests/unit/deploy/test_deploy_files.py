"""Static checks of the deploy files in cluster/ (no Ray cluster is started)."""

from pathlib import Path

import pytest
import ray
import yaml
from ray.serve.schema import (
    DeploymentSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from cluster.settings import ON_HEAD_NODE, Settings
from serve_app.bind import is_loopback
from training_client.local_server import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVE_CONFIG = REPO_ROOT / "deploy" / "serve_config.yaml"
RAYSERVICE = REPO_ROOT / "deploy" / "rayservice.yaml"

APP_NAME = "training_module"
IMPORT_PATH = "serve_app:app"
BUILDER_ARGS = set(Settings.model_fields)  # what `serve_app:app` accepts


def _load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _known_keys(model) -> set:
    keys = set(model.model_fields)
    keys |= {f.alias for f in model.model_fields.values() if f.alias}
    return keys


def _check_serve_config(raw: dict, storage_root: str) -> ServeDeploySchema:
    """Validate a Serve config dict and return the parsed schema."""
    # The schemas accept unknown keys silently (forward compatibility), so
    # catch typos explicitly.
    assert set(raw) <= _known_keys(ServeDeploySchema)
    for app in raw["applications"]:
        assert set(app) <= _known_keys(ServeApplicationSchema)
        for dep in app.get("deployments", []):
            assert set(dep) <= _known_keys(DeploymentSchema)

    config = ServeDeploySchema.model_validate(raw)

    apps = {a.name: a for a in config.applications}
    assert list(apps) == [APP_NAME]
    app = apps[APP_NAME]
    assert app.import_path == IMPORT_PATH
    assert app.route_prefix == "/"
    assert set(app.args) <= BUILDER_ARGS
    assert app.args["storage_root"] == storage_root
    assert app.args["max_upload_mb"] == 512
    assert config.http_options.port == 8000

    assert [d.name for d in app.deployments] == ["TrainingModule"]
    dep = app.deployments[0]
    assert dep.num_replicas == 1
    assert dep.ray_actor_options.num_cpus == 0
    assert dep.ray_actor_options.resources == ON_HEAD_NODE  # the config replaces the code's options whole
    return config


def _deployment_names(config: ServeDeploySchema) -> set:
    return {d.name for a in config.applications for d in a.deployments}


def _rayservice_serve_config(manifest: dict) -> dict:
    serve_config_v2 = manifest["spec"]["serveConfigV2"]
    assert isinstance(serve_config_v2, str), "serveConfigV2 must be a YAML string"
    return yaml.safe_load(serve_config_v2)


def test_serve_config_validates():
    config = _check_serve_config(_load(SERVE_CONFIG), "/var/lib/training_module")
    assert config.proxy_location.value == "EveryNode"
    assert config.http_options.host == "127.0.0.1"


def test_rayservice_manifest():
    manifest = _load(RAYSERVICE)
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == "RayService"
    assert manifest["metadata"]["name"] == "training-module"

    config = _check_serve_config(
        _rayservice_serve_config(manifest), "/mnt/shared/training_module"
    )
    assert config.http_options.host == "0.0.0.0"

    cluster = manifest["spec"]["rayClusterConfig"]
    # The image's Ray must match the cluster's; keep both in step with the venv.
    assert cluster["rayVersion"] == ray.__version__

    head = cluster["headGroupSpec"]
    head_ports = {p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert {6379, 8265, 10001, 8000} <= head_ports

    workers = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    gpu = workers["gpu-workers"]
    assert gpu["minReplicas"] <= gpu["replicas"] <= gpu["maxReplicas"]
    gpu_limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(gpu_limits["nvidia.com/gpu"]) >= 1

    # storage_root must live on the shared PVC, mounted on every pod.
    for pod in [head["template"]["spec"]] + [g["template"]["spec"] for g in workers.values()]:
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        }
        assert "training-module-storage" in claims.values()
        mounts = {
            m["mountPath"]
            for c in pod["containers"]
            for m in c.get("volumeMounts", [])
            if claims.get(m["name"]) == "training-module-storage"
        }
        assert mounts == {"/mnt/shared"}


@pytest.mark.parametrize("source", ["serve_config", "rayservice"])
def test_deployment_names_match_app(source):
    # Importing the deployment only defines it; it does not start Ray.
    from serve_app.deployment import TrainingModule

    raw = _load(SERVE_CONFIG) if source == "serve_config" else _rayservice_serve_config(_load(RAYSERVICE))
    config = ServeDeploySchema.model_validate(raw)
    assert _deployment_names(config) == {TrainingModule.name}


def _pods(manifest: dict) -> list[dict]:
    cluster = manifest["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]


def _serve_configs() -> dict[str, dict]:
    """Every Serve config shipped in deploy/ (a RayService embeds one) and the one ServerProcess writes."""
    configs = {}
    for path in sorted((REPO_ROOT / "deploy").glob("*.yaml")):
        raw = _load(path)
        configs[path.name] = _rayservice_serve_config(raw) if raw.get("kind") == "RayService" else raw
    return configs


@pytest.mark.parametrize("name", sorted(_serve_configs()))
def test_every_shipped_serve_config_says_its_host(name):
    """Ray's default for a config file without `host` is 0.0.0.0 (every interface), so none may leave it out."""
    raw = _serve_configs()[name]
    assert "host" in raw.get("http_options", {}), f"{name} leaves the host to Ray's default, 0.0.0.0"


def test_the_local_configs_listen_on_loopback(tmp_path):
    assert _load(SERVE_CONFIG)["http_options"]["host"] == "127.0.0.1"
    server = ServerProcess(tmp_path / "storage", tmp_path)
    assert _load(server.config)["http_options"]["host"] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")


def test_a_manifest_listening_beyond_loopback_gives_every_pod_the_api_token():
    """The server refuses 0.0.0.0 without a token; the app builder and the replica may run on any pod."""
    manifest = _load(RAYSERVICE)
    assert not is_loopback(_rayservice_serve_config(manifest)["http_options"]["host"])
    for pod in _pods(manifest):
        for container in pod["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            assert "TM_API_TOKEN" in env, container["name"]
            assert env["TM_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "training-module-token"
    assert "kubectl create secret generic training-module-token" in RAYSERVICE.read_text()
