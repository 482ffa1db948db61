"""The human side of the results: curves and confusion matrix as PNG, and a summary.md to open first."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix  # noqa: E402

from train_jobs.files import atomic_write_bytes, atomic_write_csv, read_json  # noqa: E402


def plot_curves(history: list[dict], dest: Path) -> Optional[Path]:
    """Training loss and each evaluation metric by optimiser step, one panel each."""
    names = [k for k in history[0] if k not in ("epoch", "step")] if history else []
    names = [n for n in names if any(isinstance(e.get(n), (int, float)) for e in history)]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        points = [(e["step"], e[name]) for e in history if isinstance(e.get(name), (int, float))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(dest, dpi=100)
    plt.close(fig)
    return dest


def plot_trials(rows: list[dict], names: list[str], metric: str, dest: Path) -> Optional[Path]:
    """A search's trials: the best validation score against each sampled value, one panel per value."""
    rows = [r for r in rows if r.get("best") is not None]
    numeric = [n for n in names if all(isinstance(r["config"].get(n), (int, float)) for r in rows)]
    if not rows or not numeric:
        return None
    fig, axes = plt.subplots(1, len(numeric), figsize=(4 * len(numeric), 3.2), squeeze=False)
    for ax, name in zip(axes[0], numeric):
        ax.scatter([r["config"][name] for r in rows], [r["best"] for r in rows])
        if name == "learning_rate":
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(dest, dpi=100)
    plt.close(fig)
    return dest


def _read_predictions(predictions_csv: Path) -> list[dict]:
    with open(predictions_csv, newline="") as f:
        return list(csv.DictReader(f))


def _write_table(dest: Path, corner: str, columns: list[str], labels: list[str], matrix: np.ndarray) -> None:
    atomic_write_csv(dest, [corner, *columns], ([label, *map(int, row)] for label, row in zip(labels, matrix)))


def _heatmap(matrix: np.ndarray, dest: Path, figsize: tuple[float, float], xticks: dict, yticks: list[str],
             annotate: bool = True, aspect: Optional[str] = None, **axes) -> None:
    """Counts as a blue heatmap, each cell labelled with its count when `annotate`."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(matrix, cmap="Blues", aspect=aspect)
    ax.set_xticks(range(matrix.shape[1]), **xticks)
    ax.set_yticks(range(matrix.shape[0]), yticks)
    ax.set(**axes)
    if annotate:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(dest, dpi=100)
    plt.close(fig)


def confusion(predictions_csv: Path, labels: list[str], csv_dest: Path, png_dest: Path) -> Optional[np.ndarray]:
    """Confusion matrix (rows: true label, columns: prediction) as CSV and PNG."""
    if not predictions_csv.is_file() or not labels:  # regression has no classes
        return None
    rows = _read_predictions(predictions_csv)
    matrix = confusion_matrix([r["label"] for r in rows], [r["prediction"] for r in rows], labels=labels)
    _write_table(csv_dest, "label \\ prediction", labels, labels, matrix)
    size = max(4.0, 0.45 * len(labels) + 2)
    _heatmap(matrix, png_dest, (size, size), {"labels": labels, "rotation": 90}, labels,
             annotate=len(labels) <= 20, xlabel="prediction", ylabel="label")
    return matrix


def multilabel_confusion(predictions_csv: Path, labels: list[str], csv_dest: Path,
                         png_dest: Path) -> Optional[np.ndarray]:
    """Per label, the counts of true negatives, false positives, false negatives and true positives."""
    if not predictions_csv.is_file():
        return None
    rows = _read_predictions(predictions_csv)

    def hot(cell: str) -> list[int]:
        names = set(cell.split("|")) if cell else set()
        return [int(label in names) for label in labels]

    matrices = multilabel_confusion_matrix([hot(r["label"]) for r in rows], [hot(r["prediction"]) for r in rows])
    table = matrices.reshape(len(labels), 4)  # tn, fp, fn, tp per label
    _write_table(csv_dest, "label", ["true_negative", "false_positive", "false_negative", "true_positive"],
                 labels, table)
    _heatmap(table, png_dest, (6, max(3.0, 0.35 * len(labels) + 1.5)), {"labels": ["TN", "FP", "FN", "TP"]},
             labels, aspect="auto", title="per-label confusion")
    return table


def write_summary(results_dir: Path, config: dict, dataset: dict, stopped: bool) -> Path:
    history = read_json(results_dir / "history.json", [])
    final = read_json(results_dir / "final_metrics.json")
    report = read_json(results_dir / "per_class_report.json")
    target = (f"{len(dataset['labels'])} tags" if dataset.get("task_type") == "token_classification"
              else f"{len(dataset['labels'])} labels" + (" (multi-label, threshold "
                                                          f"{config.get('multi_label_threshold', 0.5)})"
                                                          if dataset.get("multi_label") else "")
              if dataset.get("labels")
              else "score {min:.3g} to {max:.3g}, mean {mean:.3g}".format(**dataset["train"]["score"]))
    hp = config.get("hyperparameters") or config  # the values the run used, "auto" resolved
    auto = f" (auto: {', '.join(hp['auto'])})" if hp.get("auto") else ""
    held = (f", {dataset['validation']['rows']} validation rows" if "validation" in dataset else
            f", {hp['validation_rows']} of them held out for validation" if hp.get("validation_rows") else "")
    selected = (final or {}).get("selected")
    lines = [
        "# Training results",
        "",
        f"- Model: `{config['model']}`, task `{config['task_type']}`",
        f"- Data: {dataset['train']['rows']} train rows{held}, {dataset['test']['rows']} test rows, {target}",
        f"- Training: up to {hp['epochs']} epochs, batch {hp['batch_size']}, learning rate {hp['learning_rate']}, "
        f"warm-up {hp['warmup_ratio']}, seed {config['seed']}{auto}" + (" (stopped early)" if stopped else ""),
        f"- Model kept: epoch {selected['epoch']}, step {selected['step']}, the {selected['reason']} "
        f"({selected['value']:.4f})" if selected else "- Model kept: the last epoch's (no validation data)",
        "",
        "## Final test metrics",
        "",
    ]
    if final:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in final.items()
                  if k != "selected"]
    else:
        lines.append("No final evaluation: the run stopped before its last epoch.")
    if history:
        lines += ["", "## Evaluations", "", "See `history.csv`; curves in `curves.png`."]
    if report:
        lines += ["", "## Per class", "", "| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        for label, scores in report.items():
            if isinstance(scores, dict) and label not in ("micro avg", "macro avg", "weighted avg", "samples avg"):
                lines.append(f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
                             f"{scores['f1-score']:.3f} | {int(scores['support'])} |")
        lines += ["", "Confusion matrix: `confusion_matrix.csv` and `confusion_matrix.png`"
                  + (" (per label: TN, FP, FN, TP)." if dataset.get("multi_label") else ".")]
    lines += ["", "Files: `predictions.csv` or, for token classification, `predictions.jsonl` (test rows with "
              "the prediction, and probabilities for classification), "
              "`config.json`, `dataset.json`, `history.json`, `final_metrics.json`"
              + (", `per_class_report.json`." if report else ".")]
    dest = results_dir / "summary.md"
    atomic_write_bytes(dest, ("\n".join(lines) + "\n").encode())
    return dest


def write_report(results_dir: Path, config: dict, dataset: dict, stopped: bool) -> None:
    history = read_json(results_dir / "history.json", [])
    plot_curves(history, results_dir / "curves.png")
    draw = multilabel_confusion if dataset.get("multi_label") else confusion
    draw(results_dir / "predictions.csv", dataset.get("labels") or [], results_dir / "confusion_matrix.csv",
         results_dir / "confusion_matrix.png")
    write_summary(results_dir, config, dataset, stopped)
