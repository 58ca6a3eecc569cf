"""Benchmark: loading the NCI CTCAE v5.0 dictionary (837 terms) from the workbook and the CSV.

    EDC_REFERENCE_DATA=../shared/data .venv/bin/python benchmarks/ctcae_load.py [--repeat 3]

On a throwaway SQLite database in a temporary folder (migrated first), it loads each file
``--repeat`` times: the first load inserts every term, the later ones find nothing to change
(the loader is idempotent). Prints seconds per load and peak Python memory (tracemalloc).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = os.environ.get("EDC_REFERENCE_DATA")
    if not folder:
        sys.exit("Set EDC_REFERENCE_DATA to the folder holding CTCAE_v5.0.xlsx and ctcae_v5.csv.")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")
        import django

        django.setup()
        from django.core.management import call_command

        from adverse_events.ctcae import load_ctcae

        call_command("migrate", verbosity=0)
        for name in ("CTCAE_v5.0.xlsx", "ctcae_v5.csv"):
            path = Path(folder) / name
            if not path.is_file():
                sys.exit(f"There is no {path}.")
            for run in range(1, args.repeat + 1):
                tracemalloc.start()
                started = time.perf_counter()
                result = load_ctcae(path)
                seconds = time.perf_counter() - started
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                print(
                    f"{name:16} load {run}: {seconds:6.2f} s, peak {peak / 2**20:6.1f} MiB "
                    f"(created {result.created}, updated {result.updated}, "
                    f"unchanged {result.unchanged})"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
