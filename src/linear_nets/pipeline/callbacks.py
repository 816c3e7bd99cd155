"""The callbacks a fit runs beside the loop: the learning-rate schedule, early stopping (or convergence), divergence."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from linear_nets.errors import DIVERGENCE_FACTOR, TrainingDiverged
from linear_nets.optim import lr_at
from linear_nets.training import Callback, EpochRecord


class LearningRateSchedule(Callback):
    """Set the model's learning rate before each epoch to `lr_at(schedule, lr, epoch, epochs)` (no state to resume).

    Example:
        >>> from linear_nets.manual.softmax_regression import SoftmaxRegression
        >>> model = SoftmaxRegression(4, 3, lr=1.0)
        >>> schedule = LearningRateSchedule(model, "cosine", lr=1.0, epochs=4)
        >>> schedule.on_epoch_begin(3); model.lr
        0.5
    """

    def __init__(self, model: Any, schedule: str, lr: float, epochs: int) -> None:
        self.model, self.schedule, self.lr, self.epochs = model, schedule, lr, epochs

    def on_epoch_begin(self, epoch: int) -> None:
        self.model.set_lr(lr_at(self.schedule, self.lr, epoch, self.epochs))


class EarlyStopping(Callback):
    """Stop after `patience` epochs (None: never) without a `metric` of the epoch's record (default its
    `val_accuracy`) better by more than `min_delta`; `restore()` puts the best epoch's `params` back. With the
    negated training loss and `min_delta` tol it stops as scikit-learn's SGD estimators do (`tol`, `n_iter_no_change`).

    Example:
        >>> w = torch.zeros(1)
        >>> stop = EarlyStopping([w], patience=2)
        >>> for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65], start=1):
        ...     _ = w.fill_(epoch)
        ...     if stop.on_epoch_end(EpochRecord(epoch, 0.0, val_accuracy=acc)):
        ...         break
        >>> stop.best_epoch, epoch, stop.restore(), w
        (2, 4, None, tensor([2.]))
        >>> converged = EarlyStopping([], patience=2, min_delta=0.01, metric=lambda record: -record.train_loss)
        >>> [converged.on_epoch_end(EpochRecord(e, loss)) for e, loss in enumerate([1.0, 0.5, 0.499, 0.498], 1)]
        [False, False, False, True]
    """

    name = "early_stopping"

    def __init__(self, params: Sequence[Tensor], patience: int | None = 5, min_delta: float = 0.0,
                 metric: Callable[[EpochRecord], float] = lambda record: record.val_accuracy) -> None:  # fmt: skip
        self.params, self.patience, self.min_delta, self.metric = list(params), patience, min_delta, metric
        self.best_metric, self.best_epoch = -math.inf, 0
        self.stopped = False  # it has ended training: kept in checkpoints, so a resumed fit trains no further
        self._best: list[Tensor] = []

    def on_epoch_end(self, record: EpochRecord) -> bool:
        """Record the epoch; True when training should stop."""
        if (value := self.metric(record)) > self.best_metric + self.min_delta:
            self.best_metric, self.best_epoch = value, record.epoch
            with torch.no_grad():
                self._best = [p.detach().clone() for p in self.params]
        self.stopped = self.patience is not None and record.epoch - self.best_epoch >= self.patience
        return self.stopped

    def state_tensors(self) -> dict[str, Tensor]:
        """The best epoch, its metric, whether it stopped and the best weights, as tensors for a checkpoint."""
        tensors = {
            "best_metric": torch.tensor(self.best_metric, dtype=torch.float64),
            "best_epoch": torch.tensor(self.best_epoch, dtype=torch.int64),
            "stopped": torch.tensor(self.stopped),
        }
        return tensors | {f"best.{i}": t for i, t in enumerate(self._best)}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Continue from `state_tensors()` of an earlier run (resume)."""
        self.best_metric, self.best_epoch = tensors["best_metric"].item(), int(tensors["best_epoch"])
        self.stopped = bool(tensors["stopped"]) if "stopped" in tensors else False  # absent in older checkpoints
        scored = "best.0" in tensors  # absent when no epoch had been scored yet
        self._best = [tensors[f"best.{i}"].to(p.device, p.dtype) for i, p in enumerate(self.params)] if scored else []

    def restore(self) -> None:
        """Put the best epoch's weights back (in place, so optimisers and wrappers keep pointing at them)."""
        with torch.no_grad():
            for p, best in zip(self.params, self._best, strict=True):
                p.copy_(best)


class DivergenceGuard(Callback):
    """End a fit with `TrainingDiverged` once its training loss exceeds 10x the first epoch's; the advice is to
    standardise inputs that are not (`standardize` False), else to lower the learning rate.

    Example:
        >>> guard = DivergenceGuard(standardize=True)
        >>> guard.on_epoch_end(EpochRecord(1, 0.7)); guard.on_epoch_end(EpochRecord(2, 6.9))
        >>> guard.on_epoch_end(EpochRecord(3, 7.5))
        Traceback (most recent call last):
        ...
        linear_nets.errors.TrainingDiverged: training diverged: the training loss rose from 0.7 (epoch 1) to 7.5 at \
epoch 3, more than 10x where it started; lower the learning rate (--lr)
    """

    def __init__(self, standardize: bool) -> None:
        self.start, self.hint = None, "lower the learning rate (--lr)"
        if not standardize:
            self.hint = ("standardise the inputs (--standardize; a table's are unless --no-standardize is given) or "
                         "lower the learning rate (--lr)")  # fmt: skip

    def on_fit_begin(self, fit: Any) -> None:
        if fit.history.epochs:  # resumed: the reference is the run's first epoch
            self.start = fit.history.epochs[0].train_loss

    def on_epoch_end(self, record: EpochRecord) -> None:
        if self.start is None:
            self.start = record.train_loss
        elif record.train_loss > DIVERGENCE_FACTOR * self.start:
            raise TrainingDiverged(record.epoch, 0, record.train_loss, start=self.start, hint=self.hint)
