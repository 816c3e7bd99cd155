"""One fit per model family, `fit_softmax` and `fit_linreg`: a config and data in, a fitted model and its history out.
The command line, the tuner, the scikit-learn estimators and the benchmarks all train through them."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor

from linear_nets.checks import (
    check_design,
    check_design_end,
    check_labels,
    check_minibatches,
    check_regression_data,
    check_split,
)
from linear_nets.concise import softmax_regression as concise
from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import ConfigError
from linear_nets.manual import softmax_regression as manual
from linear_nets.models import SoftmaxModel
from linear_nets.pipeline.callbacks import DivergenceGuard, EarlyStopping, LearningRateSchedule
from linear_nets.pipeline.config import LEAST_SQUARES, LinregConfig, SoftmaxConfig, validate
from linear_nets.pipeline.distributed import ALONE, World, check_rows, data_parallel, default_threads, share
from linear_nets.pipeline.runs import check_state
from linear_nets.regularization import FeatureStats, Standardized, Standardizer, train_val_split
from linear_nets.scratch import softmax_regression as scratch
from linear_nets.training import Callback, EpochEnd, History, as_callbacks, evaluate_accuracy, train

SOFTMAX_MODELS = {
    "scratch": scratch.SoftmaxRegression,
    "manual": manual.SoftmaxRegression,
    "concise": concise.SoftmaxRegression,
}
EVAL_BATCH_BYTES = 256 << 20  # evaluation needs no gradient: the 10,000 test images as one 31 MB float batch


@dataclass
class Dataset:
    """Labelled examples in memory: `train` and optionally `test`, each `(X [n, ...], y [n])` (images may stay uint8),
    `classes[k]` naming class k, and `weights` `[n]`: the fit then minimises sum_i w_i l_i / sum_i w_i."""

    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor] | None = None
    classes: list[str] | None = None
    weights: Tensor | None = None

    @property
    def num_inputs(self) -> int:
        return math.prod(self.train[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes is not None else int(self.train[1].max()) + 1


def fashion_mnist(data_dir: str | None = None) -> Dataset:
    """Fashion-MNIST's training and test sets, as found offline (see `linear_nets.data.fashion_mnist.locate`)."""
    from linear_nets.data.fashion_mnist import CLASSES, FashionMNIST

    train_set, test_set = FashionMNIST("train", data_dir), FashionMNIST("test", data_dir)
    return Dataset((train_set.images, train_set.labels), (test_set.images, test_set.labels), list(CLASSES))


@dataclass
class SoftmaxFit:
    """A fit as callbacks see it in `on_fit_begin` / `on_fit_end` (a resuming recorder restores the model, optimiser,
    `generators` and callbacks, then sets `start_epoch` and `history`) and as `fit_softmax` returns it: the model at
    `best_epoch`, every epoch's record, the validation and test accuracy of those weights (None when not scored) and
    the fit's wall time (the final test not included)."""

    config: SoftmaxConfig
    model: SoftmaxModel
    callbacks: list[Callback]
    generators: list[torch.Generator]
    num_batches: int
    classes: list[str]
    history: History = field(default_factory=History)
    start_epoch: int = 1
    best_epoch: int = 0
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0


def build_model(
    config: SoftmaxConfig, num_inputs: int, num_classes: int, standardizer: Standardizer | None = None
) -> SoftmaxModel:
    """The model `config` describes, weights drawn from `config.seed`, wrapped in `Standardized` under `standardize`
    (with placeholder statistics when no `standardizer` is given: a saved model's are loaded next).

    Example:
        >>> model = build_model(SoftmaxConfig(impl="manual"), num_inputs=4, num_classes=3)
        >>> model.predict(torch.zeros(2, 4)).shape
        torch.Size([2])
    """
    options: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.impl == "concise":
        options["optimizer"] = config.optimizer
    generator = torch.Generator().manual_seed(config.seed)
    model = SOFTMAX_MODELS[config.impl](num_inputs, num_classes, generator=generator, **options)
    if config.standardize:
        standardizer = standardizer or Standardizer(torch.zeros(num_inputs), torch.ones(num_inputs))
        return Standardized(model, standardizer)
    return model


def resolve_device(name: str) -> torch.device:
    """The torch device a config's `device` names; `ConfigError` naming the field when cuda is asked for and there is
    none.

    Example:
        >>> resolve_device("cpu").type
        'cpu'
    """
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device cuda: this torch ({torch.__version__}) sees no CUDA devices; use device cpu",
                          "device")  # fmt: skip
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def prepare_machine(config: SoftmaxConfig, *, world: World = ALONE) -> torch.device:
    """Set torch's CPU threads (`threads`, else `distributed.default_threads`); return the `device`."""
    torch.set_num_threads(config.threads if config.threads is not None else default_threads(world)[0])
    return resolve_device(config.device)


def as_one_batch(X: Tensor, y: Tensor, resize: int | None, max_bytes: int = EVAL_BATCH_BYTES) -> Any:
    """An evaluation loader over `(X, y)`: one float batch when it fits in `max_bytes` (scored after every epoch, one
    product instead of 40), else batches that each do."""
    per_example = math.prod(X.shape[1:-2]) * resize * resize if resize is not None else math.prod(X.shape[1:])
    if X.shape[0] * per_example * 4 > max_bytes:  # (a fixed 4,096 images resized to 1000 x 1000 would be 16 GB)
        return ArrayLoader((X, y), max(1, max_bytes // (per_example * 4)), resize=resize)
    return [next(iter(ArrayLoader((X, y), max(1, X.shape[0]), resize=resize)))]


def fit_softmax(
    config: SoftmaxConfig,
    data: Dataset | Any,
    callbacks: Sequence[Callback] = (),
    *,
    evaluate_test: bool = True,
    init: dict[str, Tensor] | None = None,
    world: World = ALONE,
) -> SoftmaxFit:
    """Train softmax regression as `config` says (validated first; else a `ConfigError`) on `data.train`, a `Dataset`
    or a `pipeline.tables.StreamedTable`; score `data.test` once, at the end, unless `evaluate_test` is False.

    With `val_fraction`, a stratified validation split is scored after every epoch (early stopping restores its best);
    without one, the test set in memory is. `callbacks` run after the fit's own. `init` (a model's `state_tensors()`)
    is a warm start, its standardisation kept. Under `world`, each process trains on its share of every batch.

    Example:
        >>> X = torch.randn(200, 2); y = (X[:, 0] > 0).long()
        >>> result = fit_softmax(SoftmaxConfig(impl="manual", epochs=5, batch_size=20), Dataset((X, y), (X, y)))
        >>> result.test_accuracy > 0.9, len(result.history.epochs)
        (True, 5)
    """
    streamed = hasattr(data, "batches")
    validate(config, examples=None if streamed else len(data.train[1]))  # memory of --resize too
    if world.launched and config.optimizer == "lbfgs":
        raise ConfigError("--optimizer lbfgs takes full-batch steps: it is not data-parallel; run it in one process")
    started = time.perf_counter()
    device = prepare_machine(config, world=world)
    standardizer = None
    if config.standardize and init is not None and "mean" in init:  # a warm start keeps its statistics
        standardizer = Standardizer(init["mean"], init["std"])
    prepared = (_streamed if streamed else _in_memory)(config, data, evaluate_test, standardizer, world)
    classes = data.classes or [str(k) for k in range(data.num_classes)]
    num_inputs = config.resize**2 if config.resize is not None else data.num_inputs
    model = build_model(config, num_inputs, len(classes), prepared.standardizer)
    if not streamed and prepared.train.tensors[0].dtype == torch.float64:  # scikit-learn's float64 data
        model.to(torch.float64)  # train a float64 model
    if init is not None:
        check_state(init, model.state_tensors(), "init")
        model.load_state_tensors(init)
    trained = model.model if prepared.standardizer is not None else model  # the loop's inputs are standardised
    train_loader, val_iter, test_iter = prepared.train, prepared.val, prepared.test
    if device.type != "cpu":
        model.to(device)
        train_loader, val_iter, test_iter = (_to(loader, device) for loader in (train_loader, val_iter, test_iter))
    own: list[Callback] = [DivergenceGuard(config.standardize)]
    if config.schedule != "constant":
        own.append(LearningRateSchedule(trained, config.schedule, config.lr, config.epochs))
    stopper = EarlyStopping(model.parameters(), config.early_stopping) if val_iter is not None else None
    if stopper is not None:
        own.append(stopper)
    generators, num_batches = ([], 0) if streamed else ([train_loader.generator], len(train_loader))
    fit = SoftmaxFit(config, model, [*own, *as_callbacks(callbacks)], generators, num_batches, classes)
    for callback in fit.callbacks:
        callback.on_fit_begin(fit)
    prepared.resume_at(fit.start_epoch)
    reduce = world.sum if world.launched else None
    if fit.start_epoch <= config.epochs and not (stopper is not None and stopper.stopped):  # stopped: a resume
        net, updater = data_parallel(trained, world)  # after early stopping ended training has nothing left to do
        train(net, train_loader, test_iter, trained.loss, config.epochs, updater, val_iter=val_iter,
              callbacks=fit.callbacks, start_epoch=fit.start_epoch, history=fit.history, reduce=reduce,
              threads=torch.get_num_threads())  # fmt: skip  # (as `prepare_machine` set them from the config)
    fit.best_epoch = fit.history.epochs[-1].epoch if fit.history.epochs else 0
    if stopper is not None:
        stopper.restore()
        fit.best_epoch, fit.val_accuracy = stopper.best_epoch, stopper.best_metric
    fit.seconds = time.perf_counter() - started
    test_part = prepared.final_test() if evaluate_test and prepared.final_test is not None else None
    if test_part is not None:  # raw test rows through the model's public interface
        fit.test_accuracy = evaluate_accuracy(model.logits, _to(test_part, device), reduce=reduce)
    for callback in fit.callbacks:
        callback.on_fit_end(fit)
    return fit


@dataclass
class _Prepared:
    """What the fit needs of its data: the standardiser, the loaders, the final test's rows, where to resume."""

    standardizer: Standardizer | None
    train: Any
    val: Any
    test: Any
    final_test: Callable[[], Any] | None  # the rows scored once, at the end: built then
    resume_at: Callable[[int], None] = lambda epoch: None


def _in_memory(config: SoftmaxConfig, data: Dataset, evaluate_test: bool, standardizer: Standardizer | None,
               world: World) -> _Prepared:  # fmt: skip
    """Examples in tensors: labels checked, the seeded validation split, weights of mean 1, inputs standardised once."""
    (X, y), val, w = data.train, None, data.weights
    for part in (data.train, data.test if evaluate_test else None):  # the test set's only if it is scored
        if part is not None:
            check_labels(part[1], data.num_classes, n=len(part[0]))
    if config.val_fraction is not None:
        train_idx, val_idx = train_val_split(y, config.val_fraction, config.seed)
        check_split(train_idx, val_idx, config.val_fraction)
        (X, y), val = (X[train_idx], y[train_idx]), (X[val_idx], y[val_idx])
        w = None if w is None else w[train_idx]
    check_rows(world, len(y))
    check_minibatches(X, config.batch_size, config.sampling, config.resize)
    if w is not None:
        if world.launched:
            raise ConfigError("weights: a data-parallel fit trains on unweighted examples; run it in one process")
        w = _mean_one(w, torch.float64 if X.dtype == torch.float64 else torch.float32)
    if standardizer is not None:  # a warm start's
        X = standardizer(X)
    elif config.standardize:
        images = X.dtype == torch.uint8 or X.dim() > 2  # pixels get a floored std; a table's columns are their own
        standardizer, X = Standardizer.fit_transform(X, Standardizer.EPS if images else 0.0, w)
    full_batch = config.optimizer == "lbfgs"  # L-BFGS steps on the whole training set
    train_loader = ArrayLoader((X, y) if w is None else (X, y, w), len(y) if full_batch else config.batch_size,
                               shuffle=not full_batch, seed=config.seed, resize=config.resize,
                               sampling=config.sampling, shard=(world.rank, world.size))  # fmt: skip

    def scored(part: tuple[Tensor, Tensor] | None) -> Any:  # as the trained model sees it: standardised once
        if part is None:
            return None
        X_part, y_part = share(world, part)  # each process scores its share; the loop sums them
        return as_one_batch(standardizer(X_part) if standardizer else X_part, y_part, config.resize)

    final_test = None if data.test is None else partial(as_one_batch, *share(world, data.test), config.resize)
    return _Prepared(standardizer, train_loader, scored(val), scored(data.test) if val is None else None, final_test)


def _streamed(config: SoftmaxConfig, table: Any, evaluate_test: bool, standardizer: Standardizer | None,
              world: World) -> _Prepared:  # fmt: skip
    """A table read in shuffled batches, each standardised as it is read (the statistics from one streamed pass)."""
    from linear_nets.pipeline.tables import EpochLoader

    check_streamable(config)
    if config.standardize and standardizer is None:
        stats = table.feature_stats()
        standardizer = Standardizer(stats.mean.float(), stats.scale.float())
    train_loader = EpochLoader(table, config.batch_size, standardizer)

    def resume_at(epoch: int) -> None:
        train_loader.epoch = epoch - 1  # the order of each epoch follows from its number

    mine = partial(share, world)  # every process reads every batch and takes its share
    final_test = partial(_EachBatch, EpochLoader(table, 1 << 14, part="test"), mine) if table.has_test else None
    return _Prepared(standardizer, _EachBatch(train_loader, mine), None, None, final_test, resume_at=resume_at)


def check_streamable(config: SoftmaxConfig | LinregConfig) -> None:
    """Raise `ConfigError` naming the flags a streamed fit (`--stream`) cannot take (the command line asks first).

    Example:
        >>> check_streamable(LinregConfig(impl="scratch"))
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: --stream trains SGD with torch.nn: add --impl concise (not scratch), or use \
--solver closed-form
    """
    if isinstance(config, SoftmaxConfig):
        if config.val_fraction is not None or config.optimizer == "lbfgs" or config.resize is not None:
            raise ConfigError("--stream trains with minibatches on the training rows: it takes no --val-fraction, "
                              "--early-stopping, --optimizer lbfgs or --resize")  # fmt: skip
    elif config.solver in LEAST_SQUARES:
        return
    elif config.impl != "concise":
        raise ConfigError(f"--stream trains SGD with torch.nn: add --impl concise (not {config.impl}), "
                          "or use --solver closed-form")  # fmt: skip
    if config.sampling != "shuffle":
        raise ConfigError("--stream shuffles through a buffer: it takes only --sampling shuffle")


def _to(loader: Any, device: torch.device) -> Any:
    """`loader` on `device`: an `ArrayLoader` or a list of batches (a scored split) now, a stream as it is read."""
    def moved(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return tuple(t.to(device) for t in batch)

    if loader is None or isinstance(loader, ArrayLoader):
        return None if loader is None else loader.to(device)
    if isinstance(loader, list):
        return [moved(batch) for batch in loader]
    return _EachBatch(loader, moved)


def _mean_one(weights: Tensor, dtype: torch.dtype) -> Tensor:
    """Per-example weights scaled to mean 1, in `dtype`: the loop's mean (1/n) sum_i w_i l_i is then the weighted
    mean sum_i w_i l_i / sum_i w_i."""
    return (weights * (weights.shape[0] / weights.sum())).to(dtype)


class _EachBatch:
    """A re-iterable loader whose batches go through `change` as they are read (a stream is never gathered)."""

    def __init__(self, loader: Any, change: Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]) -> None:
        self.loader, self.change = loader, change

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for batch in self.loader:
            yield self.change(tuple(batch))


@dataclass
class LinregFit:
    """What `fit_linreg` returns: w `[d]` and b (float64), the history (empty for least squares), the OLS statistics
    (None for SGD) and the warnings the fit raised."""

    config: LinregConfig
    w: Tensor
    b: Tensor
    history: History
    seconds: float
    warnings: list[str] = field(default_factory=list)
    ols: Any = None


def fit_linreg(
    config: LinregConfig,
    data: Any,
    callbacks: Sequence[Callback] = (),
    *,
    init: tuple[Tensor, Tensor] | None = None,
    world: World = ALONE,
    names: Sequence[str] | None = None,
    weights: Tensor | None = None,
) -> LinregFit:
    """Fit linear regression y ≈ Xw + b as `config` says (validated first; else a `ConfigError`), on `(X, y)` tensors
    or a `pipeline.tables.StreamedTable`: minibatch SGD (`weights` `[n]` weigh the rows' losses; `init=(w, b)` a
    start) or least squares in float64 with the OLS statistics in `ols` (`names` the features there; default x1, ...).
    Under `standardize`, SGD fits z = (x − mean) / std and returns w and b in x's units. Under `world`, least squares
    combines each process's triangular factor; SGD is not split.

    Example:
        >>> from linear_nets.data.synthetic import synthetic_data
        >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, generator=torch.Generator().manual_seed(0))
        >>> result = fit_linreg(LinregConfig(solver="closed-form"), (X, y))
        >>> [round(v, 2) for v in result.w.tolist()], round(result.b.item(), 2), result.ols.df_resid
        ([2.0, -3.4], 4.2, 997)
    """
    validate(config)
    if not hasattr(data, "least_squares"):  # in memory: the data checked once, here (a stream chunk by chunk)
        check_regression_data(*data)
        check_rows(world, len(data[0]))
    started = time.perf_counter()
    history = History()
    result = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if config.solver in LEAST_SQUARES:
            from linear_nets.closed_form import as_tensors  # here: scipy is no part of a softmax run's start-up

            result = _least_squares(config, data, names, world)
            w, b = as_tensors(result)
        else:
            own = [EpochEnd(history.epochs.append), DivergenceGuard(config.standardize)]
            w, b = _fit_linreg_sgd(config, data, [*own, *as_callbacks(callbacks)], init, world, weights)
    messages = [str(c.message) for c in caught]
    return LinregFit(config, w, b, history, time.perf_counter() - started, messages, result)


def _least_squares(config: LinregConfig, data: Any, names: Sequence[str] | None, world: World) -> Any:
    """The least-squares fit with its statistics, over a streamed table or (X, y) in memory (one chunk)."""
    from linear_nets.closed_form import default_names, design_chunk, fit_least_squares

    method = "qr" if config.solver == "closed-form" else "normal-equations"
    solver = {"fit_intercept": not config.no_intercept, "method": method, "cov_type": config.cov,
              "alpha": config.alpha}  # fmt: skip
    if hasattr(data, "least_squares"):  # a streamed table
        return data.least_squares(world, **solver)
    X, y = share(world, data)
    Zt = design_chunk(X, y, solver["fit_intercept"])
    names = list(names) if names is not None else default_names(X.shape[1])
    gather = world.gather if world.launched else None
    check_design_end(check_design(Zt, names), names, gather=gather)
    return fit_least_squares(lambda: [Zt], names, gather=gather, **solver)


def _fit_linreg_sgd(config: LinregConfig, data: Any, callbacks: list[Callback], init: tuple[Tensor, Tensor] | None,
                    world: World, weights: Tensor | None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Minibatch SGD (w and b in x's units): the implementation's own `fit` on tensors, else (a stream, weighted rows)
    the concise model in the one loop."""
    from importlib import import_module

    if hasattr(data, "least_squares"):  # a streamed table
        from linear_nets.pipeline.tables import EpochLoader

        check_streamable(config)
        stats = data.feature_stats() if config.standardize else None
        loader = EpochLoader(data, config.batch_size, None if stats is None else stats.standardize)
        w, b = _concise_sgd(config, loader, data.spec.num_features, callbacks)
    else:
        X, y = data
        check_minibatches(X, config.batch_size, config.sampling)
        stats = FeatureStats.of(X, weights) if config.standardize else None  # a row of weight 2 counts twice
        if stats is not None:
            X = stats.standardize(X)
            if init is not None:  # the start in standardised units
                w0 = init[0].to(torch.float64).reshape(-1)
                init = (w0 * stats.scale, init[1].to(torch.float64) + (w0 * stats.mean).sum())
        init = None if init is None else (init[0].to(X.dtype), init[1].to(X.dtype))
        if weights is not None:
            if config.impl != "concise" or world.launched:
                raise ConfigError("weights train the concise model in one process: use impl concise", "impl")
            rows = (X, y.reshape(-1, 1), _mean_one(weights, X.dtype))
            loader = ArrayLoader(rows, config.batch_size, shuffle=True, seed=config.seed, sampling=config.sampling)
            w, b = _concise_sgd(config, loader, X.shape[1], callbacks, init)
        else:
            fit = import_module(f"linear_nets.{config.impl}.linear_regression").fit
            w, b, _ = fit(X, y, loss=config.loss, huber_delta=config.huber_delta or 1.0, lr=config.lr,
                          num_epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
                          callbacks=callbacks, init=init, sampling=config.sampling)  # fmt: skip
    w, b = w.to(torch.float64).reshape(-1), b.to(torch.float64).reshape(())
    if stats is None:
        return w, b
    return w / stats.scale, b - (w * stats.mean / stats.scale).sum()


def _concise_sgd(config: LinregConfig, loader: Any, num_inputs: int, callbacks: list[Callback],
                 init: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The concise model trained by the loop over `loader`'s (X, y) or (X, y, w) batches; returns its w and b."""
    from linear_nets.concise.linear_regression import model
    from linear_nets.losses import get_loss

    net, trainer = model(num_inputs, config.lr, torch.Generator().manual_seed(config.seed), init)
    loss = get_loss(config.loss, delta=config.huber_delta or 1.0, reduction="none")  # None: the default δ = 1
    train(net, loader, None, loss, config.epochs, trainer, metric=None, callbacks=callbacks)
    return net[0].weight.detach().reshape(-1), net[0].bias.detach().reshape(())
