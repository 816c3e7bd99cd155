"""The best linear classifier on Fashion-MNIST: one configuration, one fit, a small seeded search, and presets.

`fit_softmax(config, splits)` trains softmax regression (any of the three implementations) on the training split,
watches the validation split after every epoch (early stopping, restoring the best epoch), and touches the test
set once, at the end, for the report. `tune_softmax` runs it over a small grid of learning rate, weight decay and
batch size and picks the configuration with the best *validation* accuracy. `PRESETS` names configurations:
`book` is d2l's recipe, `best` is what the sweep in benchmarks/RESULTS.md chose.

Full-batch L-BFGS (concise, `optimizer="lbfgs"`) cannot run in the minibatch loop: its step re-evaluates the loss
on the whole training set, so `fit_softmax` gives it its own loop, where one "epoch" is `LBFGS_ITERS` iterations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import Tensor

from linear_nets.concise import softmax_regression as concise
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.fashion_mnist import FashionMNIST
from linear_nets.errors import ConfigError
from linear_nets.manual import softmax_regression as manual
from linear_nets.optim import OPTIMIZERS, SCHEDULES, check_choice, check_weight_decay, make_scheduler
from linear_nets.regularization import (
    EarlyStopping,
    Standardized,
    Standardizer,
    check_val_fraction,
    parameters,
    train_val_split,
)
from linear_nets.scratch import softmax_regression as scratch
from linear_nets.timing import Timer
from linear_nets.training import EpochRecord, History, accuracy, evaluate_accuracy, train

IMPLS = {"scratch": scratch.SoftmaxRegression, "manual": manual.SoftmaxRegression, "concise": concise.SoftmaxRegression}
NUM_CLASSES = 10
EVAL_BATCH = 4096  # evaluation needs no gradient: bigger batches, fewer calls


@dataclass(frozen=True)
class SoftmaxConfig:
    """Everything that decides a softmax-regression fit (the flags of `linear-nets train softmax`).

    Attributes:
        impl: "scratch", "manual" or "concise" (only concise takes an optimizer other than "sgd").
        optimizer: one of `linear_nets.optim.OPTIMIZERS`.
        lr: learning rate (> 0).
        weight_decay: L2 penalty wd >= 0 on W: the loss gains (wd / 2) ||W||².
        batch_size: examples per minibatch (ignored by full-batch L-BFGS).
        epochs: maximum passes over the training split.
        schedule: one of `linear_nets.optim.SCHEDULES` (concise only).
        standardize: standardise each pixel with statistics of the training split.
        patience: stop after this many epochs without a better validation accuracy; None: run every epoch (the
            best epoch is still restored when there is a validation split).
        seed: initial weights and shuffling.
    """

    impl: str = "concise"
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 10
    schedule: str = "constant"
    standardize: bool = False
    patience: int | None = None
    seed: int = 0

    def check(self) -> SoftmaxConfig:
        """Return self, or raise `ConfigError` naming the first field out of range."""
        check_choice("impl", self.impl, tuple(IMPLS))
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.impl != "concise" and (self.optimizer != "sgd" or self.schedule != "constant"):
            raise ConfigError(
                f"--optimizer {self.optimizer} / --schedule {self.schedule} need --impl concise: the {self.impl} "
                "implementation trains with the book's plain SGD"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr!r}")
        check_weight_decay(self.weight_decay)
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience <= 0):
            raise ConfigError(f"patience (early stopping) must be a positive integer, got {self.patience!r}")
        return self


PRESETS: dict[str, SoftmaxConfig] = {
    "book": SoftmaxConfig(),
    # Chosen by `linear-nets tune softmax` and the sweep in benchmarks/bench_best.py (benchmarks/RESULTS.md).
    "best": SoftmaxConfig(
        optimizer="momentum",
        lr=0.01,
        weight_decay=0.0,  # the sweep: 0, 1e-4 and 1e-3 within 0.001 of each other on validation; 0 was best
        batch_size=256,
        epochs=8,
        schedule="cosine",
        standardize=True,
        patience=5,
    ),
}
"""Named configurations for `--preset`: `book` (d2l 3.7) and `best` (the best found on the validation split)."""


@dataclass
class Splits:
    """Fashion-MNIST in memory, split three ways: `(images uint8 [n, 1, 28, 28], labels [n])` per part.

    `val` is None when no validation split was carved out (then nothing can stop early or be tuned).
    """

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor] | None
    test: tuple[Tensor, Tensor]

    @classmethod
    def from_arrays(
        cls, images: Tensor, labels: Tensor, test: tuple[Tensor, Tensor], val_fraction: float | None, seed: int = 0
    ) -> Splits:
        """Carve a stratified validation split (`train_val_split`) out of `(images, labels)` unless `val_fraction`
        is None."""
        if val_fraction is None:
            return cls((images, labels), None, test)
        train_idx, val_idx = train_val_split(labels, val_fraction, seed)
        return cls((images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx]), test)


def load_splits(data_dir: str | None = None, val_fraction: float | None = 0.1, split_seed: int = 0) -> Splits:
    """Fashion-MNIST's training set split into train / validation (`val_fraction` of each class), and its test set.

    Example:
        >>> splits = load_splits(val_fraction=0.1)  # doctest: +SKIP
        >>> len(splits.train[1]), len(splits.val[1]), len(splits.test[1])  # doctest: +SKIP
        (54000, 6000, 10000)
    """
    if val_fraction is not None:
        check_val_fraction(val_fraction)
    train, test = FashionMNIST("train", data_dir), FashionMNIST("test", data_dir)
    return Splits.from_arrays(train.images, train.labels, (test.images, test.labels), val_fraction, split_seed)


@dataclass
class FitResult:
    """What `fit_softmax` returns.

    Attributes:
        config: the configuration trained.
        model: the trained model (a `Standardized` wrapper when `config.standardize`), at its best epoch.
        history: per-epoch records; `test_metric` there is the *validation* accuracy (None without a val split).
        best_epoch: the epoch whose weights the model holds.
        val_accuracy: validation accuracy of those weights (None without a val split).
        test_accuracy: test accuracy of those weights (None when not asked for).
        test_curve: test accuracy after every epoch, when `track_test` (for exercise 3.7.2's curves only).
        seconds: wall time of the fit (standardisation, training, per-epoch validation), not of loading or testing.
    """

    config: SoftmaxConfig
    model: object
    history: History
    best_epoch: int
    val_accuracy: float | None
    test_accuracy: float | None
    test_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0


def build_model(config: SoftmaxConfig, num_inputs: int, standardizer: Standardizer | None = None) -> object:
    """The model `config` describes, with weights drawn from `config.seed` (wrapped in `Standardized` if given)."""
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.impl == "concise":
        kwargs["optimizer"] = config.optimizer
    model = IMPLS[config.impl](num_inputs, NUM_CLASSES, generator=torch.Generator().manual_seed(config.seed), **kwargs)
    return model if standardizer is None else Standardized(model, standardizer)


def fit_softmax(
    config: SoftmaxConfig,
    splits: Splits,
    *,
    evaluate_test: bool = True,
    track_test: bool = False,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> FitResult:
    """Train `config` on `splits.train`, early-stop on `splits.val`, report on `splits.test`.

    Args:
        config: what to train (checked first).
        splits: the data; with `splits.val`, the best epoch (by validation accuracy) is restored at the end.
        evaluate_test: compute the final test accuracy (the tuner does not: it must not look at the test set).
        track_test: also record the test accuracy after every epoch (for curves; never used to choose anything).
        on_epoch_end: called with each epoch's record (its `test_metric` is the validation accuracy).

    Example:
        >>> result = fit_softmax(PRESETS["best"], load_splits())  # doctest: +SKIP
        >>> round(result.test_accuracy, 3)  # doctest: +SKIP
        0.846
    """
    config.check()
    timer = Timer()
    images = splits.train[0]
    train_data, val_data, standardizer = splits.train, splits.val, None
    if config.standardize:
        # Standardised once here rather than per batch (two fewer passes over every batch, every epoch): the
        # wrapped model trains on it, and the wrapper standardises whatever it is given at test and predict time.
        standardizer, standardized = Standardizer.fit_transform(images)
        train_data = (standardized, train_data[1])
        val_data = (standardizer(val_data[0]), val_data[1]) if val_data is not None else None
    model = build_model(config, math.prod(images.shape[1:]), standardizer)
    inner = model.model if standardizer is not None else model
    val_iter = ArrayLoader(val_data, EVAL_BATCH) if val_data is not None else None
    test_iter = ArrayLoader(splits.test, EVAL_BATCH)
    stopper = EarlyStopping(parameters(model), config.patience) if val_iter is not None else None
    test_curve: list[float] = []
    test_seconds = Timer()  # the curve's test evaluations, left out of the fit's time
    test_seconds.times.append(0.0)
    scheduler = None
    if config.impl == "concise" and config.optimizer != "lbfgs":
        scheduler = make_scheduler(model.updater, config.schedule, config.epochs)

    def epoch_end(record: EpochRecord) -> bool:
        if scheduler is not None:
            scheduler.step()
        if track_test:
            test_seconds.start()
            test_curve.append(evaluate_accuracy(model.net, test_iter))
            test_seconds.stop()
        if on_epoch_end is not None:
            on_epoch_end(record)
        return stopper is not None and stopper(record)

    if config.optimizer == "lbfgs":
        history = _fit_lbfgs(inner, train_data, val_iter, config, epoch_end)
    else:
        train_iter = ArrayLoader(train_data, config.batch_size, shuffle=True, seed=config.seed)
        history = train(
            inner.net, train_iter, val_iter, inner.loss, config.epochs, inner.updater, on_epoch_end=epoch_end
        )
    best_epoch = history.epochs[-1].epoch
    if stopper is not None:
        stopper.restore()
        best_epoch = stopper.best_epoch
    seconds = timer.stop() - test_seconds.sum()
    val_accuracy = stopper.best_metric if stopper is not None else None
    test_accuracy = evaluate_accuracy(model.net, test_iter) if evaluate_test else None
    return FitResult(config, model, history, best_epoch, val_accuracy, test_accuracy, test_curve, seconds)


def _fit_lbfgs(
    model: object,
    train_data: tuple[Tensor, Tensor],
    val_iter: ArrayLoader | None,
    config: SoftmaxConfig,
    epoch_end: Callable[[EpochRecord], bool],
) -> History:
    """Full-batch L-BFGS on mean cross-entropy + (wd / 2) ||W||², `LBFGS_ITERS` iterations per epoch.

    Returns the same `History` as `train`, so early stopping, curves and tables treat it like any other fit.
    """
    images, labels = train_data
    X = images.reshape(images.shape[0], -1)
    X = X.to(torch.float32) / 255.0 if X.dtype == torch.uint8 else X
    linear, optimizer = model.net[1], model.updater

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        objective = model.loss(linear(X), labels).mean() + config.weight_decay / 2 * linear.weight.square().sum()
        objective.backward()
        return objective

    history = History()
    for epoch in range(1, config.epochs + 1):
        timer = Timer()
        optimizer.step(closure)  # LBFGS_ITERS iterations
        with torch.no_grad():
            logits = linear(X)
            train_loss = model.loss(logits, labels).mean().item()
            train_acc = accuracy(logits, labels).item() / labels.shape[0]
        val_acc = evaluate_accuracy(model.net, val_iter) if val_iter is not None else None
        record = EpochRecord(epoch, train_loss, train_acc, val_acc, timer.stop())
        history.epochs.append(record)
        if epoch_end(record):
            break
    return history


@dataclass
class Trial:
    """One configuration of the search and how it did on the validation split."""

    config: SoftmaxConfig
    val_accuracy: float
    best_epoch: int
    seconds: float


DEFAULT_GRID: dict[str, Sequence] = {"lr": [0.003, 0.01, 0.03], "weight_decay": [0.0, 1e-4, 1e-3], "batch_size": [256]}
"""The search `tune softmax` runs by default around `PRESETS["best"]`: 9 fits, about 15 s on one core."""


def grid_configs(base: SoftmaxConfig, grid: dict[str, Sequence]) -> list[SoftmaxConfig]:
    """Every combination of the values in `grid` (field -> values), other fields from `base`, in a fixed order.

    Example:
        >>> [(c.lr, c.batch_size) for c in grid_configs(SoftmaxConfig(), {"lr": [0.1, 0.3], "batch_size": [64]})]
        [(0.1, 64), (0.3, 64)]
    """
    names = list(grid)
    unknown = [n for n in names if n not in SoftmaxConfig.__dataclass_fields__]
    if unknown:
        raise ConfigError(f"cannot search over {', '.join(unknown)}: not a SoftmaxConfig field")
    for name in names:
        if not grid[name]:
            raise ConfigError(f"grid: give at least one value of {name}")
    configs = [replace(base, **dict(zip(names, values, strict=True))) for values in itertools.product(*grid.values())]
    return [c.check() for c in configs]


def tune_softmax(
    splits: Splits,
    base: SoftmaxConfig = PRESETS["best"],
    grid: dict[str, Sequence] | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Fit every configuration of `grid` around `base`; return the trials, best validation accuracy first.

    The test set is never evaluated. Ties in validation accuracy go to the faster fit.

    Raises:
        ConfigError: no validation split, or a bad grid (checked before any training).
    """
    if splits.val is None:
        raise ConfigError("tuning needs a validation split: give a val_fraction between 0 and 1")
    configs = grid_configs(base, DEFAULT_GRID if grid is None else grid)
    trials = []
    for config in configs:
        result = fit_softmax(config, splits, evaluate_test=False)
        trials.append(Trial(config, result.val_accuracy, result.best_epoch, result.seconds))
        if on_trial is not None:
            on_trial(trials[-1])
    return sorted(trials, key=lambda t: (-t.val_accuracy, t.seconds))


def as_flags(config: SoftmaxConfig, base: SoftmaxConfig | None = None) -> str:
    """The `linear-nets train softmax` flags that reproduce `config` (only those that differ from `base`).

    Example:
        >>> as_flags(replace(SoftmaxConfig(), lr=0.3, standardize=True))
        '--lr 0.3 --standardize'
    """
    base = base or SoftmaxConfig()
    parts: list[str] = []
    for name, value in asdict(config).items():
        if value == getattr(base, name):
            continue
        flag = "--early-stopping" if name == "patience" else "--" + name.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)
