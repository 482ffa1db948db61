"""Model import, the catalogue and the three model routes, through `serve run` over HTTP."""

from __future__ import annotations

import io
import shutil
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from data import sentiment_files
from helpers import expect_error, extract, kill_session_actor, new_session, wait_for
from tiny_model import build_tiny_bert
from transformers import AutoModel, AutoModelForSequenceClassification

from training_client import TrainingModuleClient


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "tiny-src", seed=3)


def tar_gz(src: Path, dest: Path, arcname: str) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=arcname)
    return dest


def imported(client: TrainingModuleClient, *args, **kwargs) -> dict:
    client.import_model(*args, **kwargs)
    return client.wait_imported()["import"]


def test_import_from_a_directory_under_an_allowed_root(server, tiny_dir):
    client = new_session(server)
    shutil.copytree(tiny_dir, server.storage_root / "imports" / "dir-bert", dirs_exist_ok=True)
    result = imported(client, "directory", str(server.storage_root / "imports" / "dir-bert"))
    assert result["status"] == "done", result
    entry = result["entry"]
    assert entry["name"] == "dir-bert" and entry["architecture"] == "BertModel"
    assert entry["classification_head"] == "BertForSequenceClassification"
    assert entry["parameters"] > 900_000 and entry["size_bytes"] > 0 and len(entry["sha256"]) == 64
    assert entry["tokenizer"] in ("BertTokenizer", "BertTokenizerFast")  # v5 drops the "Fast" suffix
    assert "dir-bert" in [m["name"] for m in client.models()]


def test_directory_outside_the_allowed_roots_is_refused(server, tiny_dir, tmp_path):
    client = new_session(server)
    err = expect_error(422, client.import_model, "directory", str(tiny_dir))
    assert "outside" in err.body["message"]
    link = server.storage_root / "imports" / "sneaky"
    link.parent.mkdir(exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(tiny_dir)  # inside by name, outside once resolved
    err = expect_error(422, client.import_model, "directory", str(link))
    assert "outside" in err.body["message"]
    assert client.import_status()["import"]["status"] == "not_started"


def test_unknown_model_type_is_422(server):
    err = expect_error(422, new_session(server).import_model, "s3", "bucket/model")
    assert "hub" in err.body["message"] and "archive" in err.body["message"]


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_import_from_an_uploaded_archive_then_download_it(server, tiny_dir, tmp_path, kind):
    client = new_session(server)
    archive = tmp_path / f"arch-bert-{kind.replace('.', '')}.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for f in tiny_dir.iterdir():
                zf.write(f, f"model/{f.name}")
    else:
        tar_gz(tiny_dir, archive, "model")
    result = imported(client, "archive", archive.name, archive=archive)
    assert result["status"] == "done", result
    name = result["entry"]["name"]

    location = client.imported_model_location()
    assert location["model"]["name"] == name and Path(location["model"]["path"]).is_dir()

    weights = extract(client.download_imported_model(tmp_path / "w.tar.gz"), tmp_path / "w") / name
    assert (weights / "config.json").is_file() and not (weights / "tokenizer.json").exists()
    assert AutoModel.from_pretrained(weights).config.hidden_size == 32
    full = extract(client.download_imported_model(tmp_path / "f.tar.gz", tokenizer=True), tmp_path / "f") / name
    assert (full / "tokenizer.json").is_file()


def test_archive_with_parent_entries_is_refused_and_leaves_nothing(server, tiny_dir, tmp_path):
    client = new_session(server)
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_dir / "config.json", arcname="model/config.json")
        data = b"owned"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = imported(client, "archive", "evil", archive=archive)
    assert result["status"] == "failed" and "outside the archive" in result["error"]
    assert "evil" not in [m["name"] for m in client.models()]
    assert not list(server.storage_root.rglob("escaped.txt"))
    assert not [p for p in (server.storage_root / "models").iterdir() if p.name.startswith(".import-")]


def test_corrupt_archive_fails_clearly(server, tiny_dir, tmp_path):
    client = new_session(server)
    good = tar_gz(tiny_dir, tmp_path / "good.tar.gz", "model").read_bytes()
    corrupt = tmp_path / "broken.tar.gz"
    corrupt.write_bytes(good[: len(good) // 2])
    result = imported(client, "archive", "broken", archive=corrupt)
    assert result["status"] == "failed" and "corrupt" in result["error"]
    assert "broken" not in [m["name"] for m in client.models()]


def test_directory_without_a_tokenizer_fails_clearly(server, tiny_dir):
    client = new_session(server)
    bare = server.storage_root / "imports" / "no-tok"
    bare.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny_dir / f, bare / f)
    result = imported(client, "directory", str(bare))
    assert result["status"] == "failed" and "tokenizer" in result["error"]
    assert "no-tok" not in [m["name"] for m in client.models()]


def test_offline_hub_id_fails_fast_with_a_clear_message(server):
    client = new_session(server)
    started = time.monotonic()
    result = imported(client, "hub", "google-bert/bert-base-uncased")
    took = time.monotonic() - started
    assert result["status"] == "failed", result
    assert "Hugging Face Hub" in result["error"] and "directory or an archive" in result["error"]
    assert took < 30, f"the offline import took {took:.0f}s"


def test_bundled_model_imports_as_its_transformer(server):
    client = new_session(server)
    result = imported(client, "bundled", "default")
    assert result["status"] == "done", result
    entry = result["entry"]
    assert entry["name"] == "all-MiniLM-L6-v2" and entry["architecture"] == "BertModel"
    assert 22_000_000 < entry["parameters"] < 23_000_000
    assert not any(f.startswith(("1_Pooling", "modules.json")) for f in entry["files"])


def test_fine_tune_an_imported_model_and_catalogue_survives_an_actor_kill(server, tiny_dir, tmp_path):
    client = new_session(server)
    archive = tar_gz(tiny_dir, tmp_path / "ft-bert.tar.gz", "ft-bert")
    assert imported(client, "archive", archive.name, archive=archive)["status"] == "done"

    kill_session_actor(server)  # this server's own, by PID
    status = wait_for(lambda: _import_status_or_none(client), 60, "import_status after the kill")
    assert status["import"]["status"] == "done" and status["import"]["name"] == "ft-bert"
    assert "ft-bert" in [m["name"] for m in status["models"]]

    client.set_parameters(model="ft-bert", epochs=1, batch_size=16)
    client.upload_dataset(*sentiment_files(tmp_path))
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    model_dir = extract(client.download_model(tmp_path / "model.tar.gz"), tmp_path / "m") / "model"
    assert AutoModelForSequenceClassification.from_pretrained(model_dir).config.id2label == {0: "neg", 1: "pos"}


def _import_status_or_none(client):
    try:
        return client.import_status()
    except Exception:
        return None
