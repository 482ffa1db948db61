"""Time to import the bundled model through the API, and the sizes of its archives.

    .venv/bin/python bench/import_bundled.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import temporary_server, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    with temporary_server() as (server, tmp):
        client = server.client(timeout=300)
        client.start_session(force_restart=True)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            client.import_model("bundled", "default")
            status = client.wait_imported(poll_s=0.1)
            seconds.append(time.perf_counter() - started)
            assert status["import"]["status"] == "done", status["import"]
        entry = status["import"]["entry"]
        sizes = {"weights_only": client.download_imported_model(tmp / "w.tar.gz").stat().st_size,
                 "with_tokenizer": client.download_imported_model(tmp / "t.tar.gz", tokenizer=True).stat().st_size}
    result = {"import_seconds": [round(s, 2) for s in seconds], "median_s": round(statistics.median(seconds), 2),
              "on_disk_bytes": entry["size_bytes"], "archive_bytes": sizes, "parameters": entry["parameters"]}
    print(f"\nimport of the bundled all-MiniLM-L6-v2 ({entry['parameters']:,} parameters), POST to done: "
          f"median {result['median_s']} s over {args.repeats} ({result['import_seconds']})")
    print(f"on disk {entry['size_bytes'] / 1e6:.1f} MB; archive {sizes['weights_only'] / 1e6:.1f} MB weights only, "
          f"{sizes['with_tokenizer'] / 1e6:.1f} MB with tokenizer")
    write_result("import_bundled", result, args.json)


if __name__ == "__main__":
    main()
