"""``supernet-report DIR``: one table and figures across the jobs of a sweep (supernet.fidelity.report).

supernet-report outputs/pipeline/multiruns/<stamp>      # in the searched metric: val_acc, val_rmse...
supernet-report outputs/rank/multiruns/<stamp>      # rank jobs: tau per config, samples pooled
supernet-report /shared/sweep out=reports/sweep     # a sweep dir you cannot write: the report elsewhere
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from supernet.errors import UsageError
from supernet.fidelity.report import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="supernet-report", description="Aggregate the jobs of a sweep: report.md, report.csv, report.png."
    )
    parser.add_argument("dir", type=Path, help="a multirun dir, e.g. outputs/pipeline/multiruns/<stamp>")
    parser.add_argument(
        "settings", nargs="*", metavar="out=DIR", help="write the report to DIR (default: the sweep dir itself)"
    )
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.dir, _out(args.settings))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(paths["md"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def _out(settings: list[str]) -> Path | None:
    """``out=DIR`` (the one setting, as supernet-export's); anything else is a one-line error."""
    out = None
    for item in settings:
        key, sep, value = item.partition("=")
        if key != "out" or not sep or not value:
            raise UsageError(f"supernet-report: {item!r} is no setting; it takes a sweep dir and out=<dir>")
        out = Path(value)
    return out
