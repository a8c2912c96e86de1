"""`python tests/js/write_bundles.py FOLDER`: the tiny bundles of every kind and FOLDER/expected.json (what the Python
runtime computes on them), for the JavaScript runtime's tests; `npm test` runs it (tests/js/run.mjs)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bundle_helpers, as pytest's pythonpath has it
sys.path.insert(0, str(Path(__file__).resolve().parent))

from js_helpers import write_bundles  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/js/write_bundles.py FOLDER")
    print(f"exported {len(write_bundles(Path(sys.argv[1])))} bundles to {sys.argv[1]}")
