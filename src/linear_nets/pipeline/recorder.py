"""Record a fit into its run directory as it goes (`RunRecorder`), and the run's life around it: `open_run`,
`run_options`, `start_run`. A checkpoint holds what an exact resume needs: parameters, optimiser, RNG states, history
and the state of stateful callbacks (early stopping).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from linear_nets.atomic import stale_temporaries
from linear_nets.errors import flag
from linear_nets.pipeline.config import MACHINE_FIELDS, to_dict
from linear_nets.pipeline.distributed import ALONE, World, check_same, default_threads
from linear_nets.pipeline.runs import (
    Run,
    check_new_out,
    check_state,
    load_optimizer_state,
    optimizer_state,
    read_json,
    refused,
    restore_rng_states,
    rng_states,
    run_config,
)
from linear_nets.training import Callback, EpochRecord, History


class RunRecorder(Callback):
    """Writes a fit's metrics into `run` after every epoch, and a checkpoint every `checkpoint_every` (0: only on
    demand); with `resume`, loads the newest checkpoint in `on_fit_begin`. Rank 0 of the `world` alone reads and
    writes the files."""

    def __init__(self, run: Run, checkpoint_every: int = 1, *, resume: bool = False, world: World = ALONE) -> None:
        self.run, self.checkpoint_every, self.resume, self.world = run, checkpoint_every, resume, world
        self.started = time.perf_counter()
        self.fit: Any = None
        self._rows: list[dict[str, Any]] = []  # the history as dicts, grown by one row per epoch (not rebuilt)
        self._snapshot: tuple[dict[str, Tensor], dict[str, Any]] | None = None  # last epoch's state, unwritten

    @property
    def epochs_done(self) -> int:
        """Number of epochs recorded (including those before a resume)."""
        return len(self._rows)

    def _stateful(self) -> dict[str, Any]:
        return {c.name: c for c in self.fit.callbacks if c is not self and hasattr(c, "state_tensors")}

    def on_fit_begin(self, fit: Any) -> None:
        self.fit = fit
        if self.resume:
            fit.start_epoch = self.restore()

    def on_epoch_end(self, record: EpochRecord) -> None:
        """Record one epoch (already in the fit's history): metrics always, a checkpoint every `checkpoint_every`."""
        self._rows.append(dataclasses.asdict(record))
        # kept, so an interrupt mid-epoch can still save it; a fit without `on_fit_begin` (linreg) has no checkpoints
        self._snapshot = self._take_snapshot() if self.fit is not None else None
        if self.world.leader:
            self.run.write_metrics(self._rows)
        if self.checkpoint_every and record.epoch % self.checkpoint_every == 0:
            self.save_checkpoint()

    def _take_snapshot(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        model = self.fit.model
        tensors = _with_prefix("model", model.state_tensors()) | rng_states(*self.fit.generators)
        state: dict[str, Any] = {"history": list(self._rows), "config": _what_decides(self.fit.config)}
        if isinstance(model.updater, torch.optim.Optimizer):
            optim_tensors, state["optimizer"] = optimizer_state(model.updater)
            tensors |= optim_tensors
        for name, callback in self._stateful().items():
            tensors |= _with_prefix(f"extra.{name}", callback.state_tensors())
        return {k: v.clone() for k, v in tensors.items()}, state  # copies: training goes on updating the tensors

    def save_checkpoint(self) -> bool:
        """Write the state after the last completed epoch unless written (safe mid-epoch); return whether it wrote."""
        if self._snapshot is None:
            return False
        if self.world.leader:
            self.run.save_checkpoint(self.epochs_done, *self._snapshot)
        self._snapshot = None
        return True

    def restore(self) -> int:
        """Load the newest checkpoint into the fit and its stateful callbacks; return the next epoch to train."""
        decides = _what_decides(self.fit.config)  # a checkpoint of other values is refused as it is read
        tensors, state = self.world.from_leader(lambda: self.run.load_checkpoint(decides))
        model = self.fit.model
        model_tensors = _under_prefix("model", tensors)
        check_state(model_tensors, model.state_tensors(), self.run.newest_checkpoint())
        with refused(f"{self.run.newest_checkpoint()} does not fit this model: ", KeyError, TypeError, ValueError,
                     RuntimeError, AttributeError):  # fmt: skip
            model.load_state_tensors(model_tensors)
            restore_rng_states(tensors, *self.fit.generators)
            if isinstance(model.updater, torch.optim.Optimizer):
                optim = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
                load_optimizer_state(model.updater, optim, state["optimizer"])
            self.fit.history.epochs[:] = History.from_dicts(state["history"]).epochs
            self._rows = [dict(row) for row in state["history"]]
            for name, callback in self._stateful().items():
                callback.load_state_tensors(_under_prefix(f"extra.{name}", tensors))
        if self.world.leader:  # this process is now the run's one writer: what a kill mid-write left goes
            for stale in stale_temporaries(self.run.path):
                stale.unlink(missing_ok=True)
        return self.epochs_done + 1

    def finish(self, model_tensors: Mapping[str, Tensor], summary: Mapping[str, Any], meta: Mapping[str, Any]) -> dict:
        """Write the final model and `summary.json` (with the wall time); return the summary written."""
        if self.world.leader:
            self.run.save_model(model_tensors, meta)
        full = {**summary, "epochs": self.epochs_done, "final": self._rows[-1] if self._rows else None,
                "wall_seconds": round(time.perf_counter() - self.started, 3)}
        if self.world.leader:
            self.run.write_summary(full)
        return full

    def removed_on_error(self) -> contextlib.AbstractContextManager[Any]:
        """A block whose `LinearNetsError` (diverged, disk full) removes a new run; a resumed run keeps its own."""
        return contextlib.nullcontext() if self.resume or not self.world.leader else self.run.removed_on_error()

    def stop(self) -> bool:
        """After Ctrl-C or a closed output: save the last epoch; keep the run (True) unless it has no checkpoint."""
        self.save_checkpoint()
        if self.run.newest_checkpoint() is not None:
            return True
        if self.world.leader:
            self.run.remove()
        return False


# --- a run's life: opened to resume, or created once the data has loaded --------------------------------------------


def open_run(model: str, world: World = ALONE, resume: str | None = None,
             out: str | None = None) -> tuple[Run | None, dict[str, Any] | None, str | None]:  # fmt: skip
    """(the run to resume or None; its summary if it finished; the directory to create, None for the default).
    Under torchrun a run without `out` is `runs/<model>-<job id>`, which a restarted group resumes."""
    if resume is None and world.launched:
        out = str(Path(out or f"runs/{model}-{world.run_id}"))

        def earlier_attempt() -> bool:  # one not this job's is left alone: creating it fails with the usual message
            run, config = Run(Path(out), {}), Path(out) / "config.json"
            ours = config.exists() and read_json(config).get("options", {}).get("torchrun_job") == world.run_id
            if ours and run.newest_checkpoint() is None:
                run.remove()  # this job's attempt died before its first checkpoint: start again
            return ours and run.newest_checkpoint() is not None

        if world.restarts and world.from_leader(earlier_attempt):
            resume, out = out, None
    elif resume is None and out is not None:
        check_new_out(out)  # before the data is read
    if resume is None:
        return None, None, out

    def read() -> tuple[dict[str, Any], Any]:
        run = Run.open(resume, model=model)
        summary = read_json(run.path / "summary.json", "run summary") if run.finished else None
        return run.config, summary if isinstance(summary, dict) or not run.finished else {}

    config, summary = world.from_leader(read)
    return Run(Path(resume), config), summary, None


def run_options(config: Any, options: Mapping[str, Any], world: World = ALONE,
                resumed: Run | None = None) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The config and run options a fit records: threads chosen once; a resumed run's own options but those given.

    Example:
        >>> from linear_nets.pipeline.config import SoftmaxConfig
        >>> run_options(SoftmaxConfig(threads=2), {"data_dir": None})[1]
        {'data_dir': None, 'threads': '--threads'}
    """
    chosen = "--threads"
    if config.threads is None:
        threads, chosen = default_threads(world)
        config = dataclasses.replace(config, threads=threads)
    if resumed is None:
        return config, {**options, "threads": chosen}
    return config, {**resumed.config.get("options", {}), **{k: v for k, v in options.items() if v}}


def start_run(model: str, config: Any, data: Mapping[str, Any], options: Mapping[str, Any],
              out: str | Path | None = None, world: World = ALONE, resumed: Run | None = None,
              fingerprint: str | None = None) -> RunRecorder:  # fmt: skip
    """The recorder of a fit into `resumed`, or into a new run directory (`out`) that rank 0 creates; under torchrun
    every process must fit the same config, data (`fingerprint`) and options.

    Example:
        >>> import tempfile; from linear_nets.pipeline.config import LinregConfig
        >>> [p.name for p in start_run("linreg", LinregConfig(), {}, {}, tempfile.mkdtemp() + "/r").run.path.iterdir()]
        ['config.json']
    """
    if world.launched:
        options = options if resumed else {**options, "torchrun_job": world.run_id}

        def content(value: Any) -> Any:  # where the files lie may differ between machines: their contents may not
            paths = ("path", "dir", "data", "test_data", "data_dir", "file")
            return {k: content(v) for k, v in value.items() if k not in paths} if isinstance(value, dict) else value

        agreed = {flag(k): v for k, v in _what_decides(config).items()}
        agreed |= {f"data {k}": v for k, v in content({**data, "sha256 of the training rows": fingerprint}).items()}
        check_same(world, agreed | {f"option {k}": v for k, v in content(dict(options)).items()})
    run = resumed or world.from_leader(lambda: Run.create(model, run_config(to_dict(config), data, options), out))
    return RunRecorder(run, options.get("checkpoint_every", 1), resume=resumed is not None, world=world)


def _with_prefix(prefix: str, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}.{name}": t for name, t in tensors.items()}


def _under_prefix(prefix: str, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {name.removeprefix(f"{prefix}."): t for name, t in tensors.items() if name.startswith(f"{prefix}.")}


def _what_decides(config: Any) -> dict[str, Any]:
    """The config's fields that decide the result: all but the machine fields (device, threads)."""
    return {k: v for k, v in to_dict(config).items() if k not in MACHINE_FIELDS}
