"""ONNX exports of tiny models built here, one per task: the exported model answers as the torch model does,
the check's figures are written beside it, and an export that misses its bar is refused and leaves nothing; a model
torch.export cannot trace is refused, a full disk is the machine's failure (507), not the model's."""

from __future__ import annotations

import errno
import json
import os
import pickle
import tarfile

import pytest
import torch
from helpers import fill, small_disk
from tiny_model import build_tiny_bert
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from train_jobs.data.samples import held_out_inputs
from train_jobs.errors import WrongState, storage_full
from train_jobs.inference.export import COPIED, ensure_export, export_failure, export_model, is_current
from train_jobs.inference.predict import Predictor
from train_jobs.specs import DatasetSpec

TEXTS = ["the film was great", "a dull and boring plot", "music", "the cast were superb but the plot was thin"]
PAIRS = [["a cat sat", "a cat sat down"], ["rain", "the sun is out"], ["one", "two"]]
SENTENCES = [["Alice", "flew", "to", "Reykjavik"], ["hi"], ["word"] * 30]
IMPOSSIBLE = {"onnx": {"probability": ("max_probability_difference", -1.0), "score": ("max_score_difference", -1.0)},
              "onnx-int8": {"probability": ("agreement", 1.5), "score": ("pearson", 1.5)}}


def _model(base, dest, loader, config, **head):
    torch.manual_seed(1)
    loader.from_pretrained(base, **head).save_pretrained(dest)
    AutoTokenizer.from_pretrained(base).save_pretrained(dest)
    (dest / "training_config.json").write_text(json.dumps({"max_seq_length": 16, **config}))
    return dest


def _csv(path, header, rows):
    path.write_text("\n".join([header] + [",".join(f'"{v}"' for v in row) for row in rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """task -> (model dir, dataset summary as the session keeps it, input kind, inputs)."""
    tmp = tmp_path_factory.mktemp("export")
    base = build_tiny_bert(tmp / "base")
    texts = [*TEXTS, *(f"sample number {i} with {'some ' * (i % 5)}words" for i in range(40))]
    single = _csv(tmp / "single.csv", "text,label", [[t, "pos"] for t in texts])
    multi = _csv(tmp / "multi.csv", "text,labels", [[t, "[]"] for t in texts])
    pairs = _csv(tmp / "pairs.csv", "text_a,text_b,score", [[a, b, 1.0] for a, b in PAIRS * 10])
    tokens = tmp / "tokens.jsonl"
    tokens.write_text("".join(json.dumps({"tokens": s, "tags": ["O"] * len(s)}) + "\n" for s in SENTENCES * 10))
    text_split = {"format": "csv", "text_columns": ["text"]}
    datasets = {
        "single_label": (_model(base, tmp / "single", AutoModelForSequenceClassification, {}, num_labels=3,
                                id2label={0: "neg", 1: "pos", 2: "mixed"}),
                         {"task_type": "sequence_classification", "test": {**text_split, "path": str(single)}},
                         "texts", TEXTS),
        "multi_label": (_model(base, tmp / "multi", AutoModelForSequenceClassification,
                               {"multi_label_threshold": 0.5}, num_labels=3, problem_type="multi_label_classification",
                               id2label={0: "acting", 1: "music", 2: "plot"}),
                        {"task_type": "sequence_classification", "test": {**text_split, "path": str(multi)}},
                        "texts", TEXTS),
        "regression": (_model(base, tmp / "pairs", AutoModelForSequenceClassification,
                              {"text_columns": ["text_a", "text_b"]}, num_labels=1, problem_type="regression"),
                       {"task_type": "regression", "test": {"path": str(pairs), "format": "csv",
                                                             "text_columns": ["text_a", "text_b"]}},
                       "pairs", PAIRS),
        "token_classification": (_model(base, tmp / "tokens", AutoModelForTokenClassification, {}, num_labels=3,
                                        id2label={0: "O", 1: "B-person", 2: "I-person"}),
                                 {"task_type": "token_classification", "test": {"path": str(tokens), "format": "jsonl"}},
                                 "tokens", SENTENCES),
    }
    # The train file is gone (no path): the check reads the test file.
    return {task: (d, DatasetSpec(train={}, **ds), kind, items) for task, (d, ds, kind, items) in datasets.items()}


@pytest.fixture(scope="module")
def fp32(models, tmp_path_factory):
    """Each task's fp32 export, built once for the tests that read it."""
    out = tmp_path_factory.mktemp("fp32")
    return {task: (export_model(d, out / task, "onnx", ds), out / task) for task, (d, ds, _, _) in models.items()}


@pytest.mark.parametrize("task", ["single_label", "multi_label", "regression", "token_classification"])
def test_the_fp32_export_answers_as_the_torch_model(models, fp32, task):
    model_dir, _, kind, items = models[task]
    check, export_dir = fp32[task]
    torch_p, onnx_p = Predictor(model_dir, device="cpu"), Predictor(export_dir)
    assert (torch_p.runtime, onnx_p.runtime) == ("torch", "onnx") and onnx_p.describe()["runtime"] == "onnx"
    assert onnx_p.describe() == {**torch_p.describe(), "runtime": "onnx"}
    for ours, theirs in zip(torch_p.predict(kind, items), onnx_p.predict(kind, items)):
        if task == "regression":
            assert theirs["score"] == pytest.approx(ours["score"], abs=1e-4)
            continue
        assert {k: v for k, v in theirs.items() if k != "probabilities"} == \
            {k: v for k, v in ours.items() if k != "probabilities"}  # the same label(s) or tags
        for label, q in ours.get("probabilities", {}).items():
            assert theirs["probabilities"][label] == pytest.approx(q, abs=1e-4)
    figure = "max_score_difference" if task == "regression" else "max_probability_difference"
    assert check["passed"] and check["bar"] == {"figure": figure, "value": 1e-3} and check[figure] <= 1e-4
    assert check["split"] == "test" and check["rows"] == (30 if task in ("regression", "token_classification")
                                                          else 44)
    assert json.loads((export_dir / "export_check.json").read_text()) == check
    assert {"model.onnx", "config.json", "training_config.json", "tokenizer.json"} <= set(os.listdir(export_dir))
    assert not {"model.safetensors", "model-fp32.onnx"} & set(os.listdir(export_dir))


def test_int8_exports_run_and_carry_their_figures(models, tmp_path):
    model_dir, dataset, kind, items = models["single_label"]
    check = export_model(model_dir, tmp_path / "dynamic", "onnx-int8", dataset)
    assert check["passed"] and check["quantisation"]["method"] == "dynamic" and check["agreement"] >= 0.99
    assert check["bar"] == {"figure": "agreement", "value": 0.99} and check["rows"] == 44
    assert json.loads((tmp_path / "dynamic" / "export_check.json").read_text())["agreement"] == check["agreement"]
    assert Predictor(tmp_path / "dynamic").describe()["runtime"] == "onnx-int8"

    model_dir, dataset, kind, items = models["token_classification"]
    check = export_model(model_dir, tmp_path / "weights", "onnx-int8", dataset, int8_methods=("weight-only",))
    assert check["quantisation"]["method"] == "weight-only" and check["words"] >= 30
    tags = Predictor(tmp_path / "weights").predict(kind, items)
    assert [len(t["tags"]) for t in tags] == [len(s) for s in items]


@pytest.mark.parametrize("fmt, figure, tried", [("onnx", "max_probability_difference", 1),
                                                 ("onnx-int8", "agreement", 2)])
def test_an_export_that_misses_its_bar_is_refused_and_leaves_nothing(models, tmp_path, fmt, figure, tried):
    model_dir, dataset, _, _ = models["single_label"]
    with pytest.raises(WrongState) as e:
        export_model(model_dir, tmp_path / "out", fmt, dataset, max_rows=8, bars=IMPOSSIBLE)
    message = e.value.message
    assert e.value.status_code == 409 and f"{figure} is " in message and "the bar is" in message
    assert message.count(" then ") == tried - 1  # int8: the dynamic kind, then the weight-only one
    assert "format=" in e.value.hint
    assert os.listdir(tmp_path) == []  # no export, no temporary folder


def test_an_export_and_its_archive_are_reused_until_the_model_changes(models, fp32, tmp_path):
    model_dir, dataset, _, _ = models["regression"]
    _, export_dir = fp32["regression"]
    check_file, archive = export_dir / "export_check.json", tmp_path / "model-onnx.tar.gz"
    built_at = check_file.stat().st_mtime_ns
    assert is_current(model_dir, export_dir)
    assert ensure_export(model_dir, export_dir, "onnx", dataset, archive) == archive
    with tarfile.open(archive) as tar:
        assert {"model-onnx/model.onnx", "model-onnx/export_check.json", "model-onnx/tokenizer.json"} <= \
            set(tar.getnames())
    archived_at = archive.stat().st_mtime_ns
    assert ensure_export(model_dir, export_dir, "onnx", dataset, archive) == archive
    assert (check_file.stat().st_mtime_ns, archive.stat().st_mtime_ns) == (built_at, archived_at)  # both reused

    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # the run resumed and saved again
    assert not is_current(model_dir, export_dir)
    ensure_export(model_dir, export_dir, "onnx", dataset, archive)
    assert is_current(model_dir, export_dir) and check_file.stat().st_mtime_ns > built_at
    assert archive.stat().st_mtime_ns >= check_file.stat().st_mtime_ns  # the archive follows the new export


def test_the_check_falls_back_to_validation_then_train_rows(models, tmp_path):
    _, dataset, _, _ = models["single_label"]
    gone = {"path": str(tmp_path / "gone.csv"), "format": "csv", "text_columns": ["text"]}

    def but(**splits) -> DatasetSpec:
        return DatasetSpec(**{**dataset.model_dump(), **splits})

    assert held_out_inputs(but(test=gone, validation=dataset.test), 3)[:2] == ("validation", "texts")
    split, kind, items = held_out_inputs(but(test=gone, train=dataset.test), 3)
    assert (split, kind, items) == ("train", "texts", TEXTS[:3])
    assert held_out_inputs(but(test=gone), 3) is None
    with pytest.raises(WrongState, match="no dataset rows"):
        export_model(models["single_label"][0], tmp_path / "x", "onnx", but(test=gone))


class DataDependent(torch.nn.Module):
    def forward(self, x):
        return x + 1 if x.sum() > 0 else x - 1  # a branch on a value: torch.export cannot trace it


def test_a_model_torch_export_cannot_trace_is_refused_409():
    with pytest.raises(Exception) as traced:
        torch.export.export(DataDependent(), (torch.ones(2),))
    refusal = export_failure(traced.value)
    assert isinstance(refusal, WrongState) and refusal.status_code == 409
    assert "could not be exported to ONNX" in refusal.message and "format=torch" in refusal.hint


def test_a_full_disk_or_no_memory_inside_the_exporter_is_raised_as_itself(tmp_path):
    """/dev/full refuses every write with ENOSPC: the real error, wrapped as the exporter wraps what it calls."""
    try:
        try:
            with open("/dev/full", "wb") as f:
                f.write(b"graph")
        except OSError as e:
            raise RuntimeError("the exporter failed to save the model") from e
    except RuntimeError as wrapped:
        failure = export_failure(wrapped)
    assert type(failure) is OSError and failure.errno == errno.ENOSPC
    failure = pickle.loads(pickle.dumps(failure))  # it leaves the Ray task as it is
    assert storage_full(failure, str(tmp_path)).status_code == 507
    try:
        raise RuntimeError("exporter") from MemoryError()
    except RuntimeError as wrapped:
        assert type(export_failure(wrapped)) is MemoryError


def test_an_export_onto_a_full_disk_is_507_naming_the_storage_root_and_leaves_nothing(models, tmp_path):
    """The export's first files fit, model.onnx does not: the server's 507, not a 409 "could not be exported"."""
    model_dir, dataset, _, _ = models["single_label"]
    copied = sum(-(-(model_dir / n).stat().st_size // 4096) * 4096 for n in COPIED if (model_dir / n).is_file())
    with small_disk(tmp_path / "disk", "16m") as disk:
        filler = fill(disk, leave=copied + (256 << 10))  # the tiny model's model.onnx is about 4 MB
        with pytest.raises(OSError) as e:
            export_model(model_dir, disk / "export", "onnx", dataset)
        assert e.value.errno == errno.ENOSPC and "could not be exported" not in str(e.value)
        full = storage_full(e.value, str(disk))
        assert full.status_code == 507 and str(disk) in full.message
        assert os.listdir(disk) == [filler.name]  # no export, no temporary folder
