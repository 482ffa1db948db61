"""Unit tests of training_client/bars.py: the preprocessing bar counts rows and shows bytes and the ETA."""

from __future__ import annotations

import io

from tqdm import tqdm

from training_client.bars import PREPROCESS_FORMAT, show_preprocess


def shown(preprocess: dict) -> str:
    out = io.StringIO()
    with tqdm(total=1, desc="preprocessing", bar_format=PREPROCESS_FORMAT, file=out) as bar:
        show_preprocess(bar, preprocess)
    return out.getvalue().rsplit("\r", 1)[-1]


def test_the_bar_counts_rows_with_bytes_and_the_eta():
    line = shown({"status": "running", "progress": 0.25, "message": "tokenising train (150 of 546 rows)",
                  "rows_done": 200, "rows_total": 807, "bytes_done": 10240, "bytes_total": 40960, "eta_s": 3.2})
    assert " 25%|" in line and "200/807 rows" in line
    assert "tokenising train (150 of 546 rows), 10.0kB of 40.0kB, ETA 3 s" in line


def test_a_server_without_row_counts_shows_the_share_done():
    line = shown({"status": "running", "progress": 0.5, "message": "tokenising train"})
    assert " 50%|" in line and "tokenising train" in line and "ETA" not in line
