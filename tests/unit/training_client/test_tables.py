"""Unit tests of the CLI's tables (training_client/tables.py)."""

from __future__ import annotations

from training_client.tables import runs_table, sessions_table


def test_runs_table_has_a_line_a_run_with_the_selected_metric():
    table = runs_table([{"run_id": "abcd1234-train-5", "state": "running", "started_at": 1.7e9, "finished_at": None,
                         "selected": None},
                        {"run_id": "abcd1234-train-3", "state": "done", "started_at": 1.7e9, "finished_at": 1.7e9 + 60,
                         "selected": {"metric": "accuracy", "value": 0.91234, "split": "validation"},
                         "deployed": True}]).splitlines()
    assert len(table) == 3 and table[0].split()[:2] == ["run", "state"]
    assert table[1].split()[:2] == ["abcd1234-train-5", "running"] and table[1].endswith("-")
    assert table[2].endswith("accuracy 0.9123 (validation)  (deployed)")


def test_sessions_table_has_a_line_a_session_and_no_keys():
    table = sessions_table({"max_sessions": 3, "sessions": [
        {"session_id": "a" * 32, "state": "training", "created_at": 1.7e9, "touched_at": 1.7e9 + 5, "runs": 2,
         "deployed": False},
        {"session_id": "b" * 32, "state": "trained", "created_at": 1.7e9, "touched_at": 1.7e9, "runs": 1,
         "deployed": True}]}).splitlines()
    assert table[0] == "2 of at most 3 sessions" and table[1].split()[:2] == ["session", "state"]
    assert table[2].split()[:2] == ["a" * 32, "training"] and table[2].endswith(" 2")
    assert table[3].endswith("1  (deployed)")
