"""One training loop for every model in the package (d2l sections 3.2, 3.3, 3.6, 3.7).

The loop does not care how a model computes its gradient. The `updater` decides:
- a `torch.optim.Optimizer` (concise): zero the grads, backprop the mean loss, step;
- a callable `updater(batch_size)` (from scratch, the book's `sgd`): backprop the summed loss, then call it;
- a `GradientStep` (hand-derived gradients): `updater.step(X, y, y_hat)` updates the parameters, no autograd.

A batch is `(X, y)`, or `(X, y, w)` with per-example weights w: the loss of example i then counts w_i times, and
with weights of mean 1 over the data an epoch's train loss is the weighted mean sum_i w_i l_i / sum_i w_i.
Totals are read once per epoch, never per batch. A NaN or infinite loss raises `TrainingDiverged`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from linear_nets.errors import TrainingDiverged
from linear_nets.losses import RegressionLoss, evaluate_loss
from linear_nets.threads import work_threads
from linear_nets.timing import Timer

Net = Callable[[Tensor], Tensor]
Loss = Callable[[Tensor, Tensor], Tensor]
"""A loss returns one value per example (`reduction='none'`)."""
Metric = Callable[[Tensor, Tensor], Tensor]
"""A metric returns the *sum* over the batch (e.g. the number of correct predictions)."""
EpochCallback = Callable[[int, float], None]
"""Called after each epoch with (epoch, mean loss over the whole training set)."""
Reduce = Callable[[Tensor], Tensor]
"""Sums the loop's totals over the processes of a data-parallel fit (an all-reduce), so each reports the whole data."""


@runtime_checkable
class GradientStep(Protocol):
    """An updater that computes its own (hand-derived) gradient: `step(X, y, y_hat)` updates the parameters (with
    `weights` w, for the loss (1/n) sum_i w_i l_i)."""

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor, weights: Tensor | None = None) -> None: ...


Updater = torch.optim.Optimizer | Callable[[int], None] | GradientStep


class Accumulator:
    """Sum `n` running totals (d2l 3.6).

    Example:
        >>> acc = Accumulator(2)
        >>> acc.add(1, 2.0); acc.add(3, 4.0)
        >>> acc[0], acc[1]
        (4.0, 6.0)
    """

    def __init__(self, n: int) -> None:
        self.data = [0.0] * n

    def add(self, *args: float) -> None:
        """Add one value to each total."""
        self.data = [a + float(b) for a, b in zip(self.data, args, strict=True)]

    def reset(self) -> None:
        """Set every total back to zero."""
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx: int) -> float:
        return self.data[idx]


def accuracy(y_hat: Tensor, y: Tensor) -> Tensor:
    """Number of correct predictions: sum_i [argmax_j y_hat_ij == y_i] (d2l 3.6), of scores `[n, q]` (or predicted
    classes `[n]`) against classes `[n]`; a 0-d tensor, not a Python float, so callers decide when to synchronise.

    Example:
        >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])).item()
        1.0
    """
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return (y_hat.to(y.dtype) == y).sum().to(torch.float32)


def evaluate_accuracy(net: Net, data_iter: Iterable, metric: Metric = accuracy, reduce: Reduce | None = None) -> float:
    """Mean of `metric` over a whole dataset: sum of per-batch metric sums / number of examples (summed over the
    processes by `reduce` when each scores its share).

    Example:
        >>> from linear_nets.data.batches import ArrayLoader
        >>> X, y = torch.eye(3), torch.tensor([0, 1, 2])
        >>> evaluate_accuracy(lambda X: X, ArrayLoader((X, y), batch_size=2))
        1.0
    """
    if isinstance(net, torch.nn.Module):
        net.eval()
    totals = _Totals(metric)
    with torch.no_grad(), work_threads():  # threads as the command line chooses them (`linear_nets.threads`)
        for X, y in data_iter:
            totals.add(net(X), y)
        return totals.means(reduce)[1]


class _Totals:
    """Sums of per-example losses and of `metric`, reduced every `CHUNK` examples and read once: per batch, the
    dispatch of ~10 small torch calls costs more than their arithmetic (benchmarks/RESULTS.md)."""

    CHUNK = 16384

    def __init__(self, metric: Metric | None) -> None:
        self.metric = metric
        self.loss_sum, self.metric_sum, self.count = torch.zeros((), dtype=torch.float64), torch.zeros(()), 0
        self._losses, self._y_hats, self._ys, self._pending = [], [], [], 0  # the batches not yet reduced

    def add(self, y_hat: Tensor, y: Tensor, loss: Tensor | None = None) -> None:
        if loss is not None:
            self._losses.append(loss)
        if self.metric is not None:
            self._y_hats.append(y_hat)
            self._ys.append(y)
        self._pending += y.shape[0]
        if self._pending >= self.CHUNK:
            self._reduce()

    def _reduce(self) -> None:
        # the totals live on the CPU; `.cpu()` moves a GPU chunk's sum (one sync per chunk, a no-op on the CPU)
        if self._losses:
            self.loss_sum += torch.cat([loss.reshape(-1) for loss in self._losses]).sum().cpu()
        if self._y_hats:
            self.metric_sum += self.metric(torch.cat(self._y_hats), torch.cat(self._ys)).cpu()
        self.count += self._pending
        self._losses, self._y_hats, self._ys, self._pending = [], [], [], 0

    def means(self, reduce: Reduce | None = None) -> tuple[float, float | None]:
        """(mean loss, mean metric or None) over everything added (by every process, with `reduce`); NaN when
        nothing was added."""
        self._reduce()
        sums = torch.stack([self.loss_sum, self.metric_sum.to(torch.float64), torch.tensor(self.count + 0.0)])
        loss_sum, metric_sum, count = (sums if reduce is None else reduce(sums)).tolist()
        if count == 0:
            return math.nan, None if self.metric is None else math.nan
        return loss_sum / count, metric_sum / count if self.metric is not None else None


def predict(net: Net, data_iter: Iterable, n: int = 6) -> tuple[Tensor, Tensor, Tensor]:
    """The first `n` examples of `data_iter` with their true and predicted classes (d2l `predict_ch3`): `(X, y,
    y_pred)`, inputs `[n, ...]`, true classes `[n]` and `argmax_j net(X)_j` `[n]` (fewer when the data has fewer).

    Example:
        >>> from linear_nets.data.batches import ArrayLoader
        >>> X, y = torch.eye(3), torch.tensor([0, 1, 1])
        >>> predict(lambda X: X, ArrayLoader((X, y), batch_size=2), n=3)[2]
        tensor([0, 1, 2])
    """
    if isinstance(net, torch.nn.Module):
        net.eval()
    images, labels, count = [], [], 0
    for X, y in data_iter:  # each batch cut to what is still missing: a test set in one batch is not copied whole
        images.append(X[: n - count])
        labels.append(y[: n - count])
        count += len(labels[-1])
        if count >= n:
            break
    X, y = torch.cat(images), torch.cat(labels)
    with torch.no_grad(), work_threads():
        return X, y, net(X).argmax(dim=1)


def _make_step(net: Net, loss: Loss, updater: Updater) -> Callable[..., tuple[Tensor, Tensor]]:
    """`step(X, y[, w]) -> (y_hat, w_i l_i)`, both detached, following the gradient of (1/n) sum_i w_i l_i; chosen
    once per epoch (`isinstance` on a Protocol costs microseconds). L-BFGS evaluates the loss several times per step:
    the step returns its first evaluation, before the update, as SGD does."""
    if isinstance(updater, torch.optim.LBFGS):

        def step(X: Tensor, y: Tensor, w: Tensor | None = None) -> tuple[Tensor, Tensor]:
            first: list[tuple[Tensor, Tensor]] = []

            def objective() -> Tensor:
                updater.zero_grad(set_to_none=True)
                y_hat = net(X)
                batch_loss = _weighted(loss(y_hat, y), w)
                value = batch_loss.mean() + updater.penalty()
                if not torch.isfinite(value):  # torch's line search would fail on it with an IndexError
                    raise FloatingPointError("the objective is not finite")
                value.backward()
                first.append((y_hat.detach(), batch_loss.detach()))
                return value

            updater.step(objective)
            return first[0]

        return step

    optimizer = isinstance(updater, torch.optim.Optimizer)
    by_hand = not optimizer and isinstance(updater, GradientStep)  # (an optimizer has a `step` too)

    def step(X: Tensor, y: Tensor, w: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if by_hand:  # the hand-derived gradient, no autograd
            with torch.no_grad():
                y_hat = net(X)
                batch_loss = _weighted(loss(y_hat, y), w)
                if w is None:
                    updater.step(X, y, y_hat)
                else:
                    updater.step(X, y, y_hat, w)
            return y_hat, batch_loss
        y_hat = net(X)
        batch_loss = _weighted(loss(y_hat, y), w)
        if optimizer:
            updater.zero_grad(set_to_none=True)
            batch_loss.mean().backward()
            updater.step()
        else:  # the book's updater(batch_size), after the summed loss's backward
            batch_loss.sum().backward()
            updater(X.shape[0])
        return y_hat.detach(), batch_loss.detach()

    return step


def _weighted(batch_loss: Tensor, w: Tensor | None) -> Tensor:
    """w_i l_i, the weights `[n]` shaped as the losses (`[n]`, or a regression's column `[n, 1]`)."""
    return batch_loss if w is None else batch_loss * w.reshape(batch_loss.shape)


def train_epoch(
    net: Net,
    train_iter: Iterable,
    loss: Loss,
    updater: Updater,
    metric: Metric | None = accuracy,
    *,
    epoch: int = 1,
    reduce: Reduce | None = None,
) -> tuple[float, float | None]:
    """Train one epoch; return (mean train loss, mean train metric or None), over every process with `reduce`.
    `TrainingDiverged` when the epoch's mean loss is NaN or infinite (at its last step) or a step overflowed (at it).
    """
    if isinstance(net, torch.nn.Module):
        net.train()
    step = _make_step(net, loss, updater)
    totals, steps = _Totals(metric), 0
    try:
        for batch in train_iter:  # (X, y), or (X, y, w) with per-example weights
            y_hat, batch_loss = step(*batch)
            totals.add(y_hat, batch[1], batch_loss)
            steps += 1
    except (RuntimeError, FloatingPointError) as exc:
        # torch refuses a step whose number (learning rate, weight decay) does not fit the parameters' dtype "without
        # overflow": a divergence that comes before any NaN (`--lr 1e300` on float32 weights)
        if isinstance(exc, RuntimeError) and "without overflow" not in str(exc):
            raise
        raise TrainingDiverged(epoch=epoch, step=steps + 1, loss=math.inf) from None
    mean_loss, mean_metric = totals.means(reduce)
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(epoch=epoch, step=steps, loss=mean_loss)
    return mean_loss, mean_metric


@dataclass
class EpochRecord:
    """What one epoch (1-based) measured. Accuracies are None where there is no such set (or no metric: regression).

    `train_loss` and `train_accuracy` are means over the epoch's minibatches, each taken as the step saw it (before
    its update; full-batch L-BFGS: at the start of the epoch's step); `val_accuracy` and `test_accuracy` are scored
    after the epoch; `seconds` is its wall time, evaluation included; `train_set_loss` is the mean loss over the whole
    training set after it (what the book prints for linear regression, `train_regression`), None where not measured.
    """

    epoch: int
    train_loss: float
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0
    train_set_loss: float | None = None


@dataclass
class History:
    """Per-epoch records of a training run."""

    epochs: list[EpochRecord] = field(default_factory=list)

    def column(self, name: str) -> list:
        """One field of every epoch, e.g. `history.column("test_accuracy")`."""
        return [getattr(r, name) for r in self.epochs]

    def as_dicts(self) -> list[dict]:
        """The records as plain dicts (for CSV / JSON)."""
        return [asdict(r) for r in self.epochs]

    @classmethod
    def from_dicts(cls, rows: Iterable[dict]) -> History:
        """The inverse of `as_dicts`."""
        return cls([EpochRecord(**row) for row in rows])


class Callback:
    """Something that runs beside the loop (a progress bar, a schedule, early stopping, a run recorder): override what
    you need. `on_batch_end()` runs after each step only where a subclass defines it (otherwise the loop pays nothing
    per batch); a pipeline that owns the whole fit (`linear_nets.pipeline.fit`) calls `on_fit_begin` and `on_fit_end`.
    A callback with training state offers `state_tensors` / `load_state_tensors`, so that a checkpoint keeps it.
    """

    on_batch_end: Callable[[], None] | None = None

    def on_fit_begin(self, fit: Any) -> None:
        """Before the first epoch, with the pipeline's fit (model, config, callbacks, ...)."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Before epoch `epoch` (1-based)."""

    def on_epoch_end(self, record: EpochRecord) -> bool | None:
        """After each epoch; True stops training (after every callback has seen the record)."""
        return None

    def on_fit_end(self, fit: Any) -> None:
        """After the last epoch."""


class EpochEnd(Callback):
    """A plain function `f(record) -> bool | None` as a callback (an Animator's `add_epoch`, a list's append)."""

    def __init__(self, function: Callable[[EpochRecord], bool | None]) -> None:
        self.on_epoch_end = function


def as_callbacks(callbacks: Iterable[Callback | Callable[[EpochRecord], bool | None]] | None) -> list[Callback]:
    """The callbacks as `Callback` objects: plain functions become `EpochEnd` callbacks."""
    return [c if isinstance(c, Callback) else EpochEnd(c) for c in callbacks or ()]


def train(
    net: Net,
    train_iter: Iterable,
    test_iter: Iterable | None,
    loss: Loss,
    num_epochs: int,
    updater: Updater,
    *,
    metric: Metric | None = accuracy,
    val_iter: Iterable | None = None,
    callbacks: Iterable[Callback | Callable[[EpochRecord], bool | None]] | None = None,
    start_epoch: int = 1,
    history: History | None = None,
    reduce: Reduce | None = None,
    threads: int | None = None,
) -> History:
    """Train `net` for `num_epochs`, scoring `metric` (None for regression) on `val_iter` and `test_iter` after each
    epoch (d2l `train_ch3`); `updater` is one of the three kinds of the module's docstring.

    `callbacks` are `Callback`s or plain functions of each `EpochRecord` (an Animator's `add_epoch`); one returning
    True stops training. A resumed run starts at `start_epoch` and appends to the `history` restored from its
    checkpoint (before the callbacks see each record). `reduce` sums the loop's totals over the processes of a
    data-parallel fit (the gradients are the updater's business); `threads`: torch threads while training, None as
    the command line chooses them (`linear_nets.threads`), the caller's restored after. Returns `history` (a new
    one by default) with this call's epochs appended.

    Example:
        >>> from linear_nets.data.batches import ArrayLoader
        >>> X = torch.randn(64, 2); y = (X[:, 0] > 0).long()
        >>> net = torch.nn.Linear(2, 2)
        >>> it = ArrayLoader((X, y), batch_size=16, shuffle=True, seed=0)
        >>> h = train(net, it, it, torch.nn.CrossEntropyLoss(reduction="none"), 20,
        ...           torch.optim.SGD(net.parameters(), lr=0.5))
        >>> h.epochs[-1].test_accuracy > 0.9
        True
    """
    callbacks = as_callbacks(callbacks)
    history = history if history is not None else History()
    batch_hooks = [c.on_batch_end for c in callbacks if c.on_batch_end is not None]
    with work_threads(threads):
        for epoch in range(start_epoch, num_epochs + 1):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            timer = Timer()
            batches = _hooked(train_iter, batch_hooks) if batch_hooks else train_iter  # no hooks, no cost per batch
            train_loss, train_accuracy = train_epoch(net, batches, loss, updater, metric, epoch=epoch, reduce=reduce)
            loaders = {"val_accuracy": val_iter, "test_accuracy": test_iter} if metric is not None else {}
            scored = {k: evaluate_accuracy(net, it, metric, reduce) for k, it in loaders.items() if it is not None}
            record = EpochRecord(epoch, train_loss, train_accuracy, **scored, seconds=timer.stop())
            history.epochs.append(record)
            if any([callback.on_epoch_end(record) for callback in callbacks]):  # a list: every callback sees it
                break
    return history


def _hooked(loader: Iterable, hooks: list[Callable[[], None]]) -> Iterator:
    """One epoch of the loader's batches, calling the per-batch hooks after each."""
    for batch in loader:
        yield batch
        for hook in hooks:
            hook()


def train_regression(
    net: Callable[[Tensor], Tensor],
    train_iter: Iterable,
    features: Tensor,
    labels: Tensor,
    loss: RegressionLoss,
    num_epochs: int,
    updater: Updater,
    on_epoch_end: EpochCallback | None = None,
    callbacks: Sequence[Callback] = (),
) -> list[float]:
    """Train linear regression (scratch, manual or concise) in the loop and return the loss over the whole training
    set after each epoch, what the book prints in 3.2 (`epoch 1, loss 0.000219`); each `EpochRecord` carries it as
    `train_set_loss` before `callbacks` see it. `TrainingDiverged` when it is NaN or infinite: NaN weights never return.
    """

    def whole_set_loss(record: EpochRecord) -> None:
        train_l = evaluate_loss(net, features, labels, loss)
        if not math.isfinite(train_l):
            raise TrainingDiverged(epoch=record.epoch, step=len(train_iter), loss=train_l)
        record.train_set_loss = train_l
        if on_epoch_end is not None:
            on_epoch_end(record.epoch, train_l)

    callbacks = [whole_set_loss, *callbacks]
    history = train(net, train_iter, None, loss, num_epochs, updater, metric=None, callbacks=callbacks)
    return history.column("train_set_loss")
