"""What a run directory holds, read without loading a model (for `linear-nets runs` and `report`)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

from linear_nets.errors import DataError, LinearNetsError
from linear_nets.pipeline.runs import Run, read_json, read_metrics, run_directories

RUNNING_WINDOW = 120.0
"""Seconds since a run's files last changed within which a run without summary.json counts as running."""


@dataclasses.dataclass
class RunRecord:
    """One run directory: the opened `run` (None if it could not be), `metrics`, `summary` (None: not finished),
    `state`, the newest checkpoint's `saved_epoch`, and `problems` (what could not be read, a line each)."""

    path: Path
    run: Run | None = None
    metrics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    summary: dict[str, Any] | None = None
    state: str | None = None
    saved_epoch: int | None = None
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def model(self) -> str | None:
        return self.run.model if self.run is not None else None

    @property
    def config(self) -> dict[str, Any]:
        """The fit's config fields (config.json's `config`; runs of 0.1: its args)."""
        if self.run is None:
            return {}
        return dict(self.run.config.get("config") or self.run.config.get("args") or {})

    @property
    def started(self) -> str | None:
        """When the run was created (config.json's `created`), as written."""
        return self.run.config.get("created") if self.run is not None else None

    @property
    def data(self) -> str:
        """What the run trained on: Fashion-MNIST, synthetic data, or the table's file name."""
        if self.run is None:
            return "?"
        options, data = self.run.config.get("options") or {}, self.run.config.get("data") or {}
        table = options.get("table")
        if isinstance(table, dict) and table.get("data"):
            return Path(str(table["data"])).name
        if data.get("spec") is not None:  # a table schema without a table file: a scikit-learn estimator's save
            return "X of a scikit-learn estimator"
        if self.model == "linreg":
            return "synthetic" if data.get("synthetic") or self.run.config.get("args") else "?"
        return "Fashion-MNIST"

    def test_metric(self) -> tuple[str, float] | None:
        """The run's headline test number: test accuracy (softmax), test R² or the final train loss (linreg)."""
        s = self.summary or {}
        for name in ("test_accuracy", "test_r2", "train_r2", "final_train_loss"):
            if isinstance(s.get(name), int | float):
                return name, float(s[name])
        return None

    def state_text(self) -> str:
        """The state in words: "finished", "stopped early at epoch 7 of 20", "running (4 of 10 epochs done)", ..."""
        if self.run is None:
            return "unreadable"
        epochs, done = self.config.get("epochs"), len(self.metrics)
        if self.state == "stopped early":
            return f"stopped early at epoch {(self.summary or {}).get('epochs', done)} of {epochs}"
        if self.state == "interrupted":
            if self.saved_epoch is None:
                return f"interrupted after {done} epochs, no checkpoint"
            return f"interrupted, last saved epoch {self.saved_epoch} of {epochs}"
        if self.state == "running":
            return f"running ({done} of {epochs} epochs done)"
        return self.state or "?"


def read_record(path: str | Path, now: float | None = None) -> RunRecord:
    """Describe the run directory `path`; a corrupt or foreign one is a record with `run` None and why in `problems`.

    Example:
        >>> import tempfile
        >>> read_record(tempfile.mkdtemp()).problems[0].endswith("config.json is missing")
        True
    """
    record = RunRecord(Path(path))
    try:
        record.run = Run.open(record.path)
    except LinearNetsError as exc:
        record.problems.append(str(exc))
        return record
    try:
        record.metrics = read_metrics(record.path)
    except DataError as exc:
        record.problems.append(str(exc))
    if (record.path / "summary.json").exists():
        try:
            summary = read_json(record.path / "summary.json", "run summary")
        except DataError as exc:
            record.problems.append(str(exc))
        else:
            if isinstance(summary, dict):
                record.summary = summary
            else:
                record.problems.append(f"run summary {record.path / 'summary.json'} is not a JSON object")
    with contextlib.suppress(OSError):  # a directory that cannot be listed: no checkpoint known
        checkpoint = record.run.newest_checkpoint()
        record.saved_epoch = None if checkpoint is None else int(checkpoint.stem.removeprefix("checkpoint-"))
    record.state = _state(record, time.time() if now is None else now)
    return record


def _state(record: RunRecord, now: float) -> str:
    """Unfinished runs whose files changed within `RUNNING_WINDOW` s or three longest epochs are running, else not."""
    if record.summary is not None:
        epochs, planned = record.summary.get("epochs"), record.config.get("epochs")
        solver = record.config.get("solver")
        early = isinstance(epochs, int) and isinstance(planned, int) and epochs < planned and solver != "closed-form"
        return "stopped early" if early else "finished"
    longest = max((r.get("seconds") or 0 for r in record.metrics if isinstance(r, dict)), default=0)
    window = max(RUNNING_WINDOW, 3 * float(longest) if isinstance(longest, int | float) else 0)
    times = []
    for p in [record.path, *record.path.iterdir()]:
        with contextlib.suppress(OSError):  # a file removed meanwhile
            times.append(p.stat().st_mtime)
    return "running" if now - max(times, default=0.0) < window else "interrupted"


def list_runs(root: str | Path = "runs") -> list[RunRecord]:
    """Every run directory under `root`, newest first (by config.json's `created`, then its modification time).

    Example:
        >>> import tempfile
        >>> list_runs(tempfile.mkdtemp())
        []
    """
    records = [read_record(path) for path in run_directories(root)]

    def newest(record: RunRecord) -> tuple[str, float]:
        with contextlib.suppress(OSError):
            return record.started or "", (record.path / "config.json").stat().st_mtime_ns
        return record.started or "", 0

    return sorted(records, key=newest, reverse=True)

