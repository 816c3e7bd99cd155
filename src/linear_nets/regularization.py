"""What keeps a classifier honest (d2l exercise 3.7.2): a validation split, early stopping, standardisation.

- `train_val_split` carves a stratified, seeded validation set out of the training set, so hyperparameters and the
  stopping epoch are chosen without looking at the test set (which is then used once, for the final report).
- `EarlyStopping` watches the validation accuracy after each epoch, stops after `patience` epochs without a new
  best, and puts back the weights of the best epoch.
- `Standardizer` rescales each pixel to mean 0 and standard deviation 1 with statistics fitted on the training split
  only; `Standardized` wraps a model so that training, evaluation and prediction all see standardised inputs, and
  keeps `mean` and `std` with the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from linear_nets.errors import ConfigError, DataError
from linear_nets.training import EpochRecord, GradientStep


def check_val_fraction(val_fraction: float) -> float:
    """Return `val_fraction`, or raise `ConfigError` unless 0 < val_fraction < 1.

    Example:
        >>> check_val_fraction(1.5)
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: val_fraction must lie strictly between 0 and 1, got 1.5
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}")
    return float(val_fraction)


def train_val_split(labels: Tensor, val_fraction: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Indices `(train, val)` of a stratified, seeded split: each class gives round(n_c * val_fraction) examples.

    Every class keeps its share in both parts (6,000 per class in Fashion-MNIST: 600 to validation at 0.1); the
    two index sets are disjoint, cover every example, and are sorted (so a split of the data keeps file order).

    Args:
        labels: class of each example `[n]`.
        val_fraction: share of each class held out, 0 < val_fraction < 1.
        seed: which examples are held out.

    Raises:
        ConfigError: `val_fraction` outside (0, 1), or a split that leaves either part empty.

    Example:
        >>> train, val = train_val_split(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, seed=0)
        >>> len(train), len(val), sorted(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])[val].tolist())
        (6, 2, [0, 1])
    """
    val_fraction = check_val_fraction(val_fraction)
    if labels.dim() != 1:
        raise DataError(f"labels must be 1-D, got shape {list(labels.shape)}")
    generator = torch.Generator().manual_seed(seed)
    val_parts = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).squeeze(1)
        shuffled = members[torch.randperm(members.numel(), generator=generator)]
        val_parts.append(shuffled[: round(members.numel() * val_fraction)])
    val = torch.cat(val_parts).sort().values
    held_out = torch.zeros(labels.numel(), dtype=torch.bool)
    held_out[val] = True
    train = torch.nonzero(~held_out).squeeze(1)
    if val.numel() == 0 or train.numel() == 0:
        raise ConfigError(
            f"val_fraction {val_fraction} of {labels.numel()} examples leaves an empty "
            f"{'validation' if val.numel() == 0 else 'training'} set: choose a fraction nearer 0.5"
        )
    return train, val


class Standardizer(nn.Module):
    """Per-pixel standardisation x -> (x - mean) / std, with `mean`, `std` fitted on training images only.

    Inputs `[n, ...]` come out flattened to `[n, d]`. `mean` and `std` are buffers (`state_dict()` holds them, so a
    checkpoint saves them with the model). Pixels that barely vary (Fashion-MNIST's corners are almost always 0) get
    std = `eps` rather than ~0, so a faint pixel at test time is not blown up a thousandfold.

    Example:
        >>> s = Standardizer.fit(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        >>> s.mean, s.std
        (tensor([1., 1.]), tensor([1.0000, 0.0100]))
        >>> s(torch.tensor([[3.0, 1.0]]))
        tensor([[2., 0.]])
    """

    EPS = 0.01

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        if mean.shape != std.shape or mean.dim() != 1:
            raise DataError(f"mean and std must be 1-D of one shape, got {list(mean.shape)} and {list(std.shape)}")
        if not bool((std > 0).all()):
            raise DataError("std must be positive everywhere")
        self.register_buffer("mean", mean.to(torch.float32))
        self.register_buffer("std", std.to(torch.float32))

    @classmethod
    def fit(cls, X: Tensor, eps: float = EPS) -> Standardizer:
        """Fit on training inputs `X` `[n, ...]` (uint8 images are read as x / 255, as `ArrayLoader` serves them)."""
        return cls.fit_transform(X, eps)[0]

    @classmethod
    def fit_transform(cls, X: Tensor, eps: float = EPS) -> tuple[Standardizer, Tensor]:
        """Fit on training inputs `X` `[n, ...]` and return it standardised too: `(standardizer, Z [n, d])`.

        Two passes in float32, in place on one float copy of `X`: the mean, then the (population) standard deviation
        of the centred values (centring first keeps E[x²] - E[x]² from cancelling). Fitting and transforming
        together costs about a third of fitting and then calling the standardizer.
        """
        if X.shape[0] < 1:
            raise DataError("cannot fit a Standardizer on zero examples")
        Z = X.reshape(X.shape[0], -1).to(torch.float32)  # always a copy for uint8; clone a float input
        Z = Z.div_(255.0) if X.dtype == torch.uint8 else Z.clone()
        mean = Z.mean(dim=0)
        Z.sub_(mean)
        std = Z.square().mean(dim=0).sqrt_().clamp_min_(eps)
        return cls(mean, std), Z.div_(std)

    def forward(self, X: Tensor) -> Tensor:
        """(X - mean) / std of a batch `[n, ...]` (uint8 images are read as x / 255 first), flattened to `[n, d]`."""
        if X.dtype == torch.uint8:
            X = X.to(torch.float32) / 255.0
        X = X.reshape(X.shape[0], -1)
        if X.shape[1] != self.mean.shape[0]:
            raise DataError(
                f"inputs have {X.shape[1]} values per example, the standardizer was fitted on {self.mean.shape[0]}"
            )
        return (X - self.mean) / self.std


class _StandardizedStep:
    """A `GradientStep` that hands the model's own step the standardised inputs it was trained on."""

    def __init__(self, step: GradientStep, standardizer: Standardizer) -> None:
        self.inner, self.standardizer = step, standardizer

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor) -> None:
        self.inner.step(self.standardizer(X), y, y_hat)


class Standardized:
    """A softmax model whose inputs are standardised first: `net(X) = model.net(standardizer(X))`.

    Drop-in for the model in `train(m.net, ..., m.loss, n, m.updater)`, `evaluate_accuracy(m.net, ...)` and
    `predict(m.net, ...)`: raw images in, the statistics of the training split applied every time.

    Example:
        >>> from linear_nets.manual.softmax_regression import SoftmaxRegression
        >>> X = torch.rand(8, 4)
        >>> m = Standardized(SoftmaxRegression(4, 3), Standardizer.fit(X))
        >>> m.net(X).shape
        torch.Size([8, 3])
    """

    def __init__(self, model: object, standardizer: Standardizer) -> None:
        self.model, self.standardizer = model, standardizer
        self.loss = model.loss
        updater = model.updater
        # An Optimizer also has a `step` (so it passes the GradientStep check): it never sees X, leave it as it is.
        hand_derived = isinstance(updater, GradientStep) and not isinstance(updater, torch.optim.Optimizer)
        self.updater = _StandardizedStep(updater, standardizer) if hand_derived else updater

    def net(self, X: Tensor) -> Tensor:
        """The wrapped model's output on the standardised `X`."""
        return self.model.net(self.standardizer(X))

    @property
    def mean(self) -> Tensor:
        return self.standardizer.mean

    @property
    def std(self) -> Tensor:
        return self.standardizer.std

    def state_tensors(self) -> dict[str, Tensor]:
        """The wrapped model's tensors plus `mean` and `std`: what a checkpoint or model file saves."""
        return {**self.model.state_tensors(), "mean": self.mean.detach(), "std": self.std.detach()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Copy saved tensors in place: the model's, and the standardisation's `mean` and `std`."""
        self.model.load_state_tensors({k: v for k, v in tensors.items() if k not in ("mean", "std")})
        with torch.no_grad():
            self.standardizer.mean.copy_(tensors["mean"])
            self.standardizer.std.copy_(tensors["std"])

    def to(self, device: torch.device | str) -> Standardized:
        """Move the model and the statistics to `device`; return the wrapper."""
        self.model.to(device)
        self.standardizer.to(device)
        return self


def parameters(model: object) -> list[Tensor]:
    """The trainable tensors of any softmax model here: `net.parameters()` (concise) or `[W, b]` (scratch, manual)."""
    model = getattr(model, "model", model)  # through a `Standardized` wrapper
    if isinstance(getattr(model, "net", None), nn.Module):
        return list(model.net.parameters())
    return [model.W, model.b]


class EarlyStopping:
    """An `on_epoch_end` callback: stop after `patience` epochs without a better validation metric, keep the best.

    Pass the validation loader as `train`'s `test_iter`: each record's `test_metric` is then the validation
    accuracy. After each new best it copies `params`; call `restore()` after training to put them back.

    Args:
        params: the tensors to snapshot and restore (see `parameters`).
        patience: epochs without improvement before stopping (>= 1); None never stops early but still restores.
        min_delta: an improvement smaller than this does not count.

    Example:
        >>> w = torch.zeros(1)
        >>> stop = EarlyStopping([w], patience=2)
        >>> for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65], start=1):
        ...     _ = w.fill_(epoch)
        ...     if stop(EpochRecord(epoch, 0.0, None, acc, 0.0)):
        ...         break
        >>> stop.best_epoch, epoch, stop.restore(), w
        (2, 4, None, tensor([2.]))
    """

    def __init__(self, params: Sequence[Tensor], patience: int | None = 5, min_delta: float = 0.0) -> None:
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise ConfigError(f"patience must be a positive integer (epochs), got {patience!r}")
        self.params, self.patience, self.min_delta = list(params), patience, min_delta
        self.best_metric, self.best_epoch = -math.inf, 0
        self._best: list[Tensor] = []

    def __call__(self, record: EpochRecord) -> bool:
        """Record the epoch; True when training should stop."""
        if record.test_metric is None:
            raise ConfigError("early stopping needs a validation set: pass it as train's test_iter")
        if record.test_metric > self.best_metric + self.min_delta:
            self.best_metric, self.best_epoch = record.test_metric, record.epoch
            with torch.no_grad():
                self._best = [p.detach().clone() for p in self.params]
        return self.patience is not None and record.epoch - self.best_epoch >= self.patience

    def state_tensors(self) -> dict[str, Tensor]:
        """The best epoch, its metric and its weights as named tensors (for a checkpoint)."""
        tensors = {
            "best_metric": torch.tensor(self.best_metric, dtype=torch.float64),
            "best_epoch": torch.tensor(self.best_epoch, dtype=torch.int64),
        }
        return tensors | {f"best.{i}": t for i, t in enumerate(self._best)}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Continue from `state_tensors()` of an earlier run (resume)."""
        self.best_metric, self.best_epoch = tensors["best_metric"].item(), int(tensors["best_epoch"])
        if "best.0" in tensors:  # absent when no epoch had been scored yet
            self._best = [tensors[f"best.{i}"].to(p.device, p.dtype) for i, p in enumerate(self.params)]
        else:
            self._best = []

    def restore(self) -> None:
        """Put the best epoch's weights back (in place, so optimisers and wrappers keep pointing at them)."""
        with torch.no_grad():
            for p, best in zip(self.params, self._best, strict=True):
                p.copy_(best)
