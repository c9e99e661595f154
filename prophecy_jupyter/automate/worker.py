"""``python -m prophecy_jupyter.automate.worker --store URL --root DIR RUN_ID``: the process an
`Executor` starts for one run."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from prophecy_jupyter.automate.executions import SPARE, execute
from prophecy_jupyter.automate.store import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prophecy-worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("run_id", help=f"the run to execute, or {SPARE!r} to read it from stdin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    store = Store(args.store)
    if args.run_id == SPARE:
        # A spare: everything a run needs is imported before the run is known.
        import papermill  # noqa: F401

        import prophecy_jupyter.automate.pipelines  # noqa: F401

        args.run_id = sys.stdin.readline().strip()
        if not args.run_id:  # its executor stopped (or died) without using it
            store.close()
            return 0
    try:
        execute(store, args.root.resolve(), args.run_id)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
