"""Record a training run into its run directory as it goes (see `linear_nets.runs` for the files).

`RunRecorder.on_epoch_end` is the per-epoch callback of `training.train`: it rewrites the metrics files and, every
`checkpoint_every` epochs, writes a checkpoint holding everything an exact resume needs: the parameters, the
optimiser's state, the RNG states (torch's global one and the shuffling generators), the history so far and any
`extra` state (the CLI's schedule and early stopping).
`finish` writes the model, the curves and the summary.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from linear_nets.errors import DataError
from linear_nets.runs import (
    Run,
    check_state,
    load_optimizer_state,
    optimizer_state,
    restore_rng_states,
    rng_states,
    under_prefix,
    with_prefix,
)
from linear_nets.training import EpochRecord, History


class Stateful(Protocol):
    """A model whose parameters can be saved and loaded as named tensors."""

    updater: Any

    def state_tensors(self) -> dict[str, Tensor]: ...

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None: ...


class ExtraState(Protocol):
    """Training state beyond the model and optimiser (a schedule, early stopping) that a checkpoint must keep."""

    def state_tensors(self) -> dict[str, Tensor]: ...

    def load_state_tensors(self, tensors: dict[str, Tensor], epochs_done: int) -> None: ...


class RunRecorder:
    """Writes metrics and checkpoints of a run while `training.train` runs.

    Args:
        run: the run directory.
        model: the model being trained (`state_tensors`, `load_state_tensors`, `updater`).
        generators: the shuffling generators, saved and restored with each checkpoint.
        checkpoint_every: write a checkpoint every N epochs (0: never).
        history: epochs already done (after a resume), so the metrics files keep every epoch.
        extra: more state to save with each checkpoint and restore with it (e.g. the CLI's `EpochHooks`).
    """

    def __init__(
        self,
        run: Run,
        model: Stateful,
        generators: Sequence[torch.Generator] = (),
        checkpoint_every: int = 1,
        history: History | None = None,
        extra: ExtraState | None = None,
    ) -> None:
        self.run, self.model, self.generators, self.extra = run, model, tuple(generators), extra
        self.checkpoint_every = checkpoint_every
        self.history = history if history is not None else History()
        self.started = time.perf_counter()
        self._snapshot: tuple[dict[str, Tensor], dict[str, Any]] | None = None  # last epoch's state, unwritten

    @property
    def epochs_done(self) -> int:
        """Number of epochs recorded (including those before a resume)."""
        return len(self.history.epochs)

    def on_epoch_end(self, record: EpochRecord) -> None:
        """Record one epoch: metrics files always, a checkpoint every `checkpoint_every` epochs."""
        self.history.epochs.append(record)
        self.run.write_metrics(self.history.as_dicts())
        # Kept in memory every epoch (a few hundred KB), so an interrupt mid-epoch can still save the last one.
        self._snapshot = self._take_snapshot()
        if self.checkpoint_every and record.epoch % self.checkpoint_every == 0:
            self.save_checkpoint()

    def _take_snapshot(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors = with_prefix("model", self.model.state_tensors()) | rng_states(*self.generators)
        state: dict[str, Any] = {"history": self.history.as_dicts()}
        if isinstance(self.model.updater, torch.optim.Optimizer):
            optim_tensors, state["optimizer"] = optimizer_state(self.model.updater)
            tensors |= optim_tensors
        if self.extra is not None:
            tensors |= with_prefix("extra", self.extra.state_tensors())
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
        """Load the newest checkpoint into the model, optimiser and generators; return the next epoch to train."""
        tensors, state = self.run.load_checkpoint()
        model_tensors = under_prefix("model", tensors)
        check_state(model_tensors, self.model.state_tensors(), self.run.path)
        try:
            self.model.load_state_tensors(model_tensors)
            restore_rng_states(tensors, *self.generators)
            if isinstance(self.model.updater, torch.optim.Optimizer):
                optim = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
                load_optimizer_state(self.model.updater, optim, state["optimizer"])
            self.history = History([EpochRecord(**row) for row in state["history"]])
            if self.extra is not None:
                self.extra.load_state_tensors(under_prefix("extra", tensors), self.epochs_done)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise DataError(f"checkpoint in {self.run.path} does not fit this model: {exc}") from None
        return self.epochs_done + 1

    def finish(self, summary: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
        """Write the final model and `summary.json` (with the wall time); return the summary written."""
        self.run.save_model(self.model.state_tensors(), meta)
        full = {
            **summary,
            "epochs": self.epochs_done,
            "final": dataclasses.asdict(self.history.epochs[-1]) if self.history.epochs else None,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
        }
        self.run.write_summary(full)
        return full
