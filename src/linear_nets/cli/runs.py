"""`linear-nets runs [DIR]`: one line per run directory, newest first; reading one is `pipeline.catalog`'s."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from linear_nets.errors import LinearNetsError

METRIC_LABELS = {"test_accuracy": "test acc", "test_r2": "test R²", "train_r2": "train R²",
                 "final_train_loss": "train loss"}  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `runs`."""
    parser = subparsers.add_parser("runs", help="list the runs under runs/ (or DIR), newest first")
    parser.add_argument("root", nargs="?", default="runs", metavar="DIR", help="where the runs are (default: runs)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per run")
    parser.set_defaults(func=run_list)


def key_fields(record: Any) -> str:
    """The run's lr, batch size, epochs and every other flag not at its default (but the implementation), e.g.
    `--lr 0.1 --batch-size 256 --epochs 10 --optimizer adam`."""
    from linear_nets.pipeline.config import as_flags

    try:
        config = record.run.fit_config
    except LinearNetsError:  # the run opened, so this is rare; the line shows no flags rather than failing
        return ""
    always = dict.fromkeys(("lr", "batch_size", "epochs"))  # None: unlike any value, so always written
    return as_flags(config, dataclasses.replace(type(config)(), impl=config.impl, **always))


def as_json(record: Any) -> dict[str, Any]:
    """One run as a JSON object."""
    metric = record.test_metric()
    return {
        "name": record.path.name,
        "path": str(record.path),
        "model": record.model,
        "data": record.data if record.run is not None else None,
        "impl": record.config.get("impl"),
        "config": record.config or None,
        "metric": None if metric is None else {"name": metric[0], "value": metric[1]},
        "state": record.state,
        "state_text": record.state_text(),
        "saved_epoch": record.saved_epoch,
        "epochs_done": len(record.metrics),
        "started": record.started,
        "problems": record.problems,
    }


def run_list(args: argparse.Namespace) -> int:
    """The `runs` handler."""
    from linear_nets.pipeline.catalog import list_runs

    records = list_runs(args.root)
    if args.json:
        print(json.dumps([as_json(r) for r in records], indent=2))
        return 0
    if not records:
        print(f"no runs in {args.root}")
        return 0
    rows = [("NAME", "MODEL", "DATA", "IMPL", "TEST", "STATE", "STARTED", "CONFIG")]
    for r in records:
        if r.run is None:
            rows.append((r.path.name, "unreadable: " + r.problems[0]))
            continue
        metric = r.test_metric()
        shown = "-" if metric is None else f"{METRIC_LABELS[metric[0]]} {metric[1]:.4g}"
        state = r.state_text() + (f" ({r.problems[0]})" if r.problems else "")
        rows.append((r.path.name, r.model or "-", r.data, r.config.get("impl", "-"), shown, state,
                     (r.started or "-").replace("T", " ")[:16], key_fields(r)))  # fmt: skip
    widths = [max(len(row[i]) for row in rows if len(row) == 8 or i == 0) for i in range(7)]
    for row in rows:
        if len(row) == 2:  # an unreadable run: its name and why
            print(f"{row[0]:<{widths[0]}}  {row[1]}")
        else:
            print("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:7], widths, strict=True)) + "  " + row[7])
    return 0
