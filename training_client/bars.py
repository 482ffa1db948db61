"""The CLI's progress bars: what a status reply shows on a tqdm bar."""

from __future__ import annotations

from tqdm import tqdm

PREPROCESS_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} rows {postfix}"


def preprocess_bar() -> tqdm:
    return tqdm(total=1, desc="preprocessing", bar_format=PREPROCESS_FORMAT)


def show_preprocess(bar: tqdm, preprocess: dict) -> None:
    """Rows done of the upload's rows on the bar; what the job does, bytes read and the ETA after it. A server
    that reports no row counts (older ones) shows the share done."""
    total = preprocess.get("rows_total")
    if total:
        bar.total, bar.n = total, min(preprocess.get("rows_done") or 0, total)
    else:
        bar.total, bar.n = 1, preprocess.get("progress", 0.0)
    parts = [preprocess.get("message", "")]
    if preprocess.get("bytes_total"):
        parts.append(f"{tqdm.format_sizeof(preprocess.get('bytes_done') or 0, 'B', 1024)} of "
                     f"{tqdm.format_sizeof(preprocess['bytes_total'], 'B', 1024)}")
    if preprocess.get("eta_s") is not None and preprocess.get("status") == "running":
        parts.append(f"ETA {preprocess['eta_s']:.0f} s")
    bar.set_postfix_str(", ".join(p for p in parts if p))
