"""Record a fit into its run directory as it goes (see `linear_nets.pipeline.runs` for the files).

`RunRecorder` is a callback of the pipeline's fit. After every epoch it rewrites the metrics files and, every
`checkpoint_every` epochs, writes a checkpoint holding everything an exact resume needs: the parameters, the
optimiser's state, the RNG states (torch's global one and the shuffling generators), the history so far and the
state of every other callback that has some (early stopping). Created with `resume=True`, it loads the newest
checkpoint before the first epoch (and deletes the temporary files a kill mid-write left) and tells the fit where to
start. `finish` writes the model and the summary.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from linear_nets.pipeline.config import MACHINE_FIELDS, to_dict
from linear_nets.pipeline.distributed import ALONE, World
from linear_nets.pipeline.runs import (
    Run,
    check_state,
    load_optimizer_state,
    optimizer_state,
    refused,
    restore_rng_states,
    rng_states,
    under_prefix,
    with_prefix,
)
from linear_nets.training import Callback, EpochRecord, History


class RunRecorder(Callback):
    """Writes metrics and checkpoints of a fit while it runs; resumes one from its newest checkpoint.

    Args:
        run: the run directory.
        checkpoint_every: write a checkpoint every N epochs (0: never; `save_checkpoint` still saves on demand).
        resume: load the newest checkpoint in `on_fit_begin` and continue after it.
        world: in a data-parallel fit, rank 0 reads the checkpoint and sends it to every process (the others hold a
            `runs.Replica`, which writes nothing).
    """

    def __init__(self, run: Run, checkpoint_every: int = 1, *, resume: bool = False, world: World = ALONE) -> None:
        self.run, self.checkpoint_every, self.resume, self.world = run, checkpoint_every, resume, world
        self.started = time.perf_counter()
        self.fit: Any = None
        self._rows: list[dict[str, Any]] = []  # the history as dicts, grown by one row per epoch (not rebuilt)
        self._snapshot: tuple[dict[str, Tensor], dict[str, Any]] | None = None  # last epoch's state, unwritten

    @property
    def history(self) -> History:
        return History.from_dicts(self._rows)

    @property
    def epochs_done(self) -> int:
        """Number of epochs recorded (including those before a resume)."""
        return len(self._rows)

    def _stateful(self) -> dict[str, Any]:
        """The other callbacks that carry training state, by name."""
        return {c.name: c for c in self.fit.callbacks if c is not self and hasattr(c, "state_tensors")}

    def on_fit_begin(self, fit: Any) -> None:
        self.fit = fit
        if self.resume:
            fit.start_epoch = self.restore()

    def on_epoch_end(self, record: EpochRecord) -> None:
        """Record one epoch (already in the fit's history): metrics always, a checkpoint every `checkpoint_every`."""
        self._rows.append(dataclasses.asdict(record))
        # Kept in memory every epoch (a few hundred KB), so an interrupt mid-epoch can still save the last one; taken
        # before the metrics are written, so an interrupt once they show this epoch finds it to save. A fit that
        # does not announce itself (`on_fit_begin`: linear regression) is recorded without checkpoints.
        self._snapshot = self._take_snapshot() if self.fit is not None else None
        self.run.write_metrics(self._rows)
        if self.checkpoint_every and record.epoch % self.checkpoint_every == 0:
            self.save_checkpoint()

    def _take_snapshot(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        model = self.fit.model
        tensors = with_prefix("model", model.state_tensors()) | rng_states(*self.fit.generators)
        state: dict[str, Any] = {"history": list(self._rows), "config": _what_decides(self.fit.config)}
        if isinstance(model.updater, torch.optim.Optimizer):
            optim_tensors, state["optimizer"] = optimizer_state(model.updater)
            tensors |= optim_tensors
        for name, callback in self._stateful().items():
            tensors |= with_prefix(f"extra.{name}", callback.state_tensors())
        # copies: training goes on updating the live tensors before the snapshot is written
        return {k: v.clone() for k, v in tensors.items()}, state

    def save_checkpoint(self) -> bool:
        """Write the state after the last completed epoch, unless already written; return whether it wrote.

        Safe to call from an interrupt handler mid-epoch: it writes the snapshot taken at the end of the epoch.
        """
        if self._snapshot is None:
            return False
        tensors, state = self._snapshot
        self.run.save_checkpoint(self.epochs_done, tensors, state)
        self._snapshot = None
        return True

    def restore(self) -> int:
        """Load the newest checkpoint into the model, optimiser, generators, history and stateful callbacks; return
        the next epoch to train."""
        decides = _what_decides(self.fit.config)  # a checkpoint of other values is refused as it is read
        tensors, state = self.world.from_leader(lambda: self.run.load_checkpoint(decides))
        model = self.fit.model
        model_tensors = under_prefix("model", tensors)
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
                callback.load_state_tensors(under_prefix(f"extra.{name}", tensors))
        if self.world.leader:
            self.run.remove_stale_temporaries()  # left by a kill mid-write; this process is now the run's one writer
        return self.epochs_done + 1

    def finish(self, model_tensors: Mapping[str, Tensor], summary: Mapping[str, Any], meta: Mapping[str, Any]) -> dict:
        """Write the final model and `summary.json` (with the wall time); return the summary written."""
        self.run.save_model(model_tensors, meta)
        full = {
            **summary,
            "epochs": self.epochs_done,
            "final": self._rows[-1] if self._rows else None,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
        }
        self.run.write_summary(full)
        return full


def _what_decides(config: Any) -> dict[str, Any]:
    """The config's fields that decide the result: all but the machine fields (device, threads)."""
    return {k: v for k, v in to_dict(config).items() if k not in MACHINE_FIELDS}
