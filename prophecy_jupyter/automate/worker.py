"""``python -m prophecy_jupyter.automate.worker --store URL --root DIR RUN_ID``: the process an
`Executor` starts for one run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from prophecy_jupyter.automate.executions import execute
from prophecy_jupyter.automate.store import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prophecy-worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    store = Store(args.store)
    try:
        execute(store, args.root.resolve(), args.run_id)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
