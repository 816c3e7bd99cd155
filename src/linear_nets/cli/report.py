"""`linear-nets report RUN [RUN ...] [--out report.html]`: one self-contained HTML page about one run, or comparing
several runs of one model (see `linear_nets.pipeline.report`). Flags and printing only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `report`."""
    parser = subparsers.add_parser(
        "report", help="one HTML page about a run (what it learned), or comparing several runs of one model"
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories written by `linear-nets train`")
    parser.add_argument("--out", default="report.html", metavar="FILE",
                        help="the HTML file to write (default: report.html); self-contained: open it offline or "
                             "attach it to a message")  # fmt: skip
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="Fashion-MNIST directory (softmax runs)")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """The `report` handler: write the page atomically, say where, and repeat on stderr what it could not show."""
    from linear_nets.atomic import atomic_write_text
    from linear_nets.cli.common import report_records
    from linear_nets.pipeline.report import build_report

    report = build_report(report_records(args.runs, args.out), args.data_dir)
    atomic_write_text(Path(args.out), report.html())
    for line in report.missing:
        print(f"linear-nets: note: {line}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 0
