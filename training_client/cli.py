"""Command line: drive the whole flow against a running server, with progress bars.

`training-module` once installed, or `python -m training_client`; the server is --url, else $TM_URL, else
http://127.0.0.1:8000.

    python -m training_client run [--train FILE --test FILE] [--model NAME] [--epochs N] [--out DIR]
    python -m training_client status
    python -m training_client wait [--timeout S]
    python -m training_client import {hub,directory,archive,bundled} NAME --key KEY
    python -m training_client models
    python -m training_client get-model NAME --key KEY [--tokenizer]
    python -m training_client download --key KEY [--format torch|onnx|onnx-int8] [--out FILE]
    python -m training_client deploy --key KEY [--runtime torch|onnx|onnx-int8] [--set FIELD=JSON]
    python -m training_client predict --key KEY [TEXT ...] [--file FILE]
    python -m training_client undeploy --key KEY
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from importlib import resources
from pathlib import Path

import httpx
from tqdm import tqdm

from training_client.bars import preprocess_bar, show_preprocess
from training_client.client import DEFAULT_URL, TrainingModuleClient, TrainingModuleError
from training_client.tables import runs_table, sessions_table


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("training-module")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _sample(name: str) -> str:
    return str(resources.files("training_client.sample_data") / name)


def _add_run_command(sub) -> None:
    run = sub.add_parser("run", help="upload, preprocess, train, print metrics, download the model")
    run.add_argument("--train", default=_sample("banking77_train.csv"), help="train file (default: bundled sample)")
    run.add_argument("--test", default=_sample("banking77_test.csv"), help="test file (default: bundled sample)")
    run.add_argument("--validation", help="validation file (default: a share of train is held out)")
    run.add_argument("--train-uri", help="read the dataset where it lives instead: s3://, gs://, hf://datasets/... "
                     "or file:// under the server's data_roots (a file or a folder of shards); with --test-uri")
    run.add_argument("--test-uri", help="the test split's URI (with --train-uri)")
    run.add_argument("--validation-uri", help="the validation split's URI (optional, with --train-uri)")
    run.add_argument("--model", help="model name (default: the server's default, all-MiniLM-L6-v2)")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--learning-rate", type=float)
    run.add_argument("--max-seq-length", type=int)
    run.add_argument("--metrics", help="comma-separated eval metrics, e.g. accuracy,f1_macro")
    run.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                     help="any other config field, e.g. --set seed=7 --set init_eval=true")
    run.add_argument("--out", default="trained_model", help="where to save the model and results")
    run.add_argument("--force-restart", action="store_true", help="wipe an active session first")
    run.add_argument("--predict", action="append", default=[], metavar="TEXT",
                     help="after training, deploy the model and print its predictions for these texts")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="training-module", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--url", default=os.environ.get("TM_URL") or DEFAULT_URL,
                        help="server address (default: $TM_URL, else %(default)s)")
    parser.add_argument("--token", help="the server's API token, if it has one (default: $TM_API_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_command(sub)
    down = sub.add_parser("download", help="download the session's trained model as tar.gz")
    down.add_argument("--key", required=True)
    down.add_argument("--format", choices=["torch", "onnx", "onnx-int8"], default="torch",
                      help="torch (Hugging Face directory), onnx (fp32) or onnx-int8 for onnxruntime (default torch)")
    down.add_argument("--out", help="file to write (default model.tar.gz, or model-FORMAT.tar.gz)")
    down.add_argument("--run", help="a run id from `runs` (default: the session's latest run)")
    runs = sub.add_parser("runs", help="list the session's training runs, newest first; with a run id, show that run")
    runs.add_argument("run_id", nargs="?", help="show this run: config, metrics, artifacts and events (JSON)")
    runs.add_argument("--key", required=True)
    dep = sub.add_parser("deploy", help="serve the session's trained model (Ray Serve) and wait until ready")
    dep.add_argument("--key", required=True)
    dep.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                     help="deployment options, e.g. --set max_batch_size=32 --set max_replicas=2")
    dep.add_argument("--runtime", choices=["torch", "onnx", "onnx-int8"],
                     help="serve the trained model (torch, the default) or its ONNX export on onnxruntime")
    dep.add_argument("--run", help="a run id from `runs` (default: the session's latest run)")
    pred = sub.add_parser("predict", help="predict with the deployed model; prints a table")
    pred.add_argument("texts", nargs="*", help="texts to classify (pair tasks: A<TAB>B; token tasks: words)")
    pred.add_argument("--file", help="one input per line")
    pred.add_argument("--key", required=True)
    undep = sub.add_parser("undeploy", help="remove the model deployment")
    undep.add_argument("--key", required=True)
    status = sub.add_parser("status", help="print the status: --key's session, else the only one's (with several "
                            "sessions: a summary)")
    status.add_argument("--key", help="the session's key (sent as the X-Session-Key header)")
    sub.add_parser("sessions", help="list the server's sessions (id, state, runs; no keys)")
    imp = sub.add_parser("import", help="import a base model into the catalogue, in the session of --key")
    imp.add_argument("model_type", choices=["hub", "directory", "archive", "bundled"])
    imp.add_argument("model_name", help="hub id, server directory, archive file, or anything for bundled")
    imp.add_argument("--key", required=True, help="an active session's key (start_session prints one)")
    sub.add_parser("models", help="list the imported models")
    get = sub.add_parser("get-model", help="download an imported model as tar.gz")
    get.add_argument("name")
    get.add_argument("--key", required=True)
    get.add_argument("--tokenizer", action="store_true", help="include the tokenizer files")
    get.add_argument("--out", help="file to write (default NAME.tar.gz)")
    wait = sub.add_parser("wait", help="wait until the server answers its healthcheck")
    wait.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args(argv)
    if args.command == "run" and bool(args.train_uri) != bool(args.test_uri):
        parser.error("--train-uri and --test-uri go together")  # before anything reaches the server
    return args


def model_class(task_type: str) -> str:
    """The transformers class that loads a trained model of `task_type` with its head (regression is a sequence
    model with one output)."""
    return "AutoModelForTokenClassification" if task_type == "token_classification" else \
        "AutoModelForSequenceClassification"


def _fields(items: list[str]) -> dict:
    return {field: json.loads(value) for field, _, value in (item.partition("=") for item in items)}


def predict_table(client: TrainingModuleClient, lines: list[str]) -> list[dict]:
    """Predict for `lines` in the form the deployed model takes, and print one row per input."""
    kind = (client.deployment()["deployment"].get("model") or {}).get("input", "texts")
    split = {"tokens": str.split, "pairs": lambda line: line.split("\t", 1)}.get(kind)
    out = client.predict(**{kind: [split(line) for line in lines] if split else lines})
    width = min(60, max(len(line) for line in lines))
    for line, p in zip(lines, out["predictions"]):
        if "label" in p:
            result = f"{p['label']}  ({p['probabilities'][p['label']]:.3f})"
        elif "labels" in p:
            result = ", ".join(f"{k} ({v:.3f})" for k, v in p["probabilities"].items()) or "(none)"
        elif "score" in p:
            result = f"{p['score']:.4f}"
        else:
            result = " ".join(f"{w}/{t}" for w, t in zip(p["tokens"], p["tags"]))
        print(f"  {line[:width]:<{width}}  {result}")
    return out["predictions"]


def deploy(client: TrainingModuleClient, options: dict, run_id: str | None = None) -> dict:
    client.deploy(run_id, **options)
    status = client.wait_deployed()["deployment"]
    if status["state"] != "ready":
        raise RuntimeError(f"the deployment is {status['state']}: {status.get('message')}")
    print(f"model deployed: Serve app {status['app']}, replicas {status['replicas']}")
    return status


def _config(args: argparse.Namespace) -> dict:
    config = {k: v for k, v in {"model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
                                "learning_rate": args.learning_rate, "max_seq_length": args.max_seq_length}.items()
              if v is not None}
    if args.metrics:
        config["eval_metrics"] = args.metrics.split(",")
    config.update(_fields(args.set))
    return config


def _upload(client: TrainingModuleClient, args: argparse.Namespace) -> dict:
    """The dataset by URI when --train-uri names one (the server reads it), else the files uploaded."""
    if args.train_uri:
        return client.upload_dataset_uris(args.train_uri, args.test_uri, args.validation_uri)
    return client.upload_dataset(args.train, args.test, args.validation)


def run(client: TrainingModuleClient, args: argparse.Namespace) -> dict:
    client.start_session(force_restart=args.force_restart)
    config = client.set_parameters(**_config(args))["config"]
    dataset = _upload(client, args)["dataset"]
    target = f"{len(dataset['labels'])} labels" if dataset["labels"] else "numeric scores"
    sampled = " (checked on a sample; preprocessing reads them all)" if dataset["train"].get("sampled") else ""
    print(f"dataset: {dataset['train']['rows']} train rows{sampled}, {dataset['test']['rows']} test rows, {target}")
    hp = client.get_parameters()["resolved"]  # the "auto" fields, resolved for this data and model
    held = f"{hp['validation_rows']} train rows held out for validation" if hp["validation_rows"] else (
        "validation file" if "validation" in dataset else "no validation")
    if hp["validation_rows"] or "validation" in dataset:
        held += f", the best by {hp['metric_for_best_model']} kept"
    print(f"model {config['model']}: up to {hp['epochs']} epochs, batch {hp['batch_size']}, lr {hp['learning_rate']:g}, "
          f"warm-up {hp['warmup_ratio']:g}; {held}; auto: {', '.join(hp['auto']) or 'none'}")

    client.preprocess()
    with preprocess_bar() as bar:
        client.wait_preprocessed(on_update=lambda status: show_preprocess(bar, status["preprocess"]))

    client.start_training()
    with tqdm(total=1, desc="training", unit="step") as bar:
        def on_train(info: dict) -> None:
            live = info["training"]["live"]
            if live:
                bar.total = live["total_steps"]
                bar.n = live["step"]
                bar.set_postfix(epoch=live["epoch"], loss=f"{live['loss']:.4f}" if live["loss"] else "-",
                                samples_s=live["samples_per_s"])
            bar.refresh()
        final = client.wait_trained(on_update=on_train)
    if final["state"] == "failed":
        raise RuntimeError(f"training failed: {final['error']}")

    out = Path(args.out)
    for name, download in (("model", client.download_model), ("results", client.download_results)):
        archive = download(out / f"{name}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(out, filter="data")
    print("\nevaluation history (validation: it selects the model kept):")
    for entry in final["history"]:
        print("  " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
    print(f"test metrics of the selected model: {json.dumps(final['metrics'])}")
    print(f"model saved to {out / 'model'} (load it with {model_class(config['task_type'])}.from_pretrained)")
    print(f"results saved to {out / 'results'}")
    if args.predict:
        deploy(client, {})
        print("predictions of the deployed model:")
        predict_table(client, args.predict)
        print(f"session key (for predict, undeploy): {client.key}")
    return final


def _serving_command(client: TrainingModuleClient, args: argparse.Namespace) -> int:
    client.key = args.key
    if args.command == "deploy":
        deploy(client, {**_fields(args.set), **({"runtime": args.runtime} if args.runtime else {})}, args.run)
    elif args.command == "undeploy":
        print(client.undeploy()["message"])
    else:
        lines = list(args.texts) + (Path(args.file).read_text().splitlines() if args.file else [])
        if not [line for line in lines if line.strip()]:
            print("error: give texts as arguments or --file", file=sys.stderr)
            return 2
        predict_table(client, [line for line in lines if line.strip()])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    with TrainingModuleClient(args.url, timeout=300, token=args.token) as client:
        try:
            if args.command == "status":
                client.key = args.key
                print(json.dumps(client.status(), indent=2))
            elif args.command == "import":
                client.key = args.key
                archive = args.model_name if args.model_type == "archive" else None
                client.import_model(args.model_type, Path(args.model_name).name if archive else args.model_name,
                                    archive)
                done = client.wait_imported()["import"]
                print(json.dumps(done.get("entry") or done, indent=2))
                return 0 if done["status"] == "done" else 1
            elif args.command == "sessions":
                print(sessions_table(client.sessions()))
            elif args.command == "models":
                for entry in client.models():
                    print(f"{entry['name']:<32} {entry.get('architecture', '-'):<32} "
                          f"{entry.get('parameters') or '-':>12} params  {entry['path']}")
            elif args.command == "get-model":
                client.key = args.key
                print(client.download_imported_model(args.out or f"{args.name}.tar.gz", args.name, args.tokenizer))
            elif args.command == "download":
                client.key = args.key
                default = "model.tar.gz" if args.format == "torch" else f"model-{args.format}.tar.gz"
                print(client.download_model(args.out or default, args.format, run_id=args.run))
            elif args.command == "runs":
                client.key = args.key
                print(json.dumps(client.run(args.run_id), indent=2) if args.run_id else runs_table(client.runs()))
            elif args.command in ("deploy", "predict", "undeploy"):
                return _serving_command(client, args)
            elif args.command == "wait":
                return 0 if client.wait_healthy(args.timeout) else 1
            else:
                run(client, args)
        except TrainingModuleError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except httpx.HTTPError as e:  # one line, not a traceback: the server is down or the address wrong
            print(f"error: cannot reach the server at {args.url}: {e or type(e).__name__} (is it running? --url, "
                  "$TM_URL)", file=sys.stderr)
            return 1
        except (RuntimeError, OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0
