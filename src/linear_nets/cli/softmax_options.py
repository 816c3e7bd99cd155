"""The regularisation and optimiser flags of `linear-nets train softmax` (d2l exercise 3.7.2 and beyond).

`--val-fraction F` carves a stratified validation split out of the training set; the per-epoch table then shows
validation accuracy and the test set is scored once, at the end. `--early-stopping P` stops after P epochs without
a better validation accuracy and restores the best epoch. `--weight-decay`, `--standardize`, `--optimizer` and
`--schedule` change the model and its training; `--preset best` sets all of them (and --impl, --lr, --epochs,
--batch-size) to the configuration in `linear_nets.tuning.PRESETS`.

`train_softmax` calls these helpers in order: `apply_preset`, `check_options`, `split_validation`, `model_options`
and `wrap_model` (in `build_model`), `fit_standardizer`, then `EpochHooks` at every epoch's end.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch import Tensor

from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import ConfigError
from linear_nets.optim import OPTIMIZERS, SCHEDULES, check_weight_decay, make_scheduler
from linear_nets.regularization import EarlyStopping, Standardized, Standardizer, parameters, train_val_split
from linear_nets.runs import under_prefix, with_prefix
from linear_nets.training import EpochRecord, evaluate_accuracy
from linear_nets.tuning import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags. Choices are checked by `check_options` (a one-line error), not by argparse."""
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        metavar="F",
        help="hold out this share of each class as a validation split (e.g. 0.1)",
    )
    parser.add_argument(
        "--early-stopping",
        type=int,
        default=None,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation accuracy; keep the best epoch",
    )
    parser.add_argument(
        "--weight-decay", type=float, default=0.0, metavar="WD", help="L2 penalty (WD / 2) ||W||² (default: 0)"
    )
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="standardise each pixel with the training split's mean and std (stored with the model)",
    )
    parser.add_argument(
        "--optimizer",
        default="sgd",
        help=f"concise only: {', '.join(o for o in OPTIMIZERS if o != 'lbfgs')} (default: sgd)",
    )
    parser.add_argument(
        "--schedule", default="constant", help=f"concise only: {', '.join(SCHEDULES)} (default: constant)"
    )
    parser.add_argument("--preset", default=None, metavar="NAME",
                        help=f"train a named configuration ({', '.join(PRESETS)}); sets the flags above and "
                             "--impl, --lr, --epochs, --batch-size")  # fmt: skip


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with the preset's settings filled in (a preset with early stopping also gets --val-fraction 0.1)."""
    if getattr(args, "preset", None) is None:
        return args
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown --preset {args.preset!r}: choose one of {', '.join(PRESETS)}")
    c = PRESETS[args.preset]
    for name in ("impl", "optimizer", "lr", "weight_decay", "batch_size", "epochs", "schedule", "standardize"):
        setattr(args, name, getattr(c, name))
    args.early_stopping = c.patience
    if c.patience is not None and args.val_fraction is None:
        args.val_fraction = 0.1
    return args


def check_options(args: argparse.Namespace) -> None:
    """Raise `ConfigError` naming the first of these flags that is out of range or inconsistent."""
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        raise ConfigError(f"--val-fraction must lie strictly between 0 and 1, got {args.val_fraction:g}")
    if args.early_stopping is not None:
        if args.early_stopping <= 0:
            raise ConfigError(f"--early-stopping must be a positive number of epochs, got {args.early_stopping}")
        if args.val_fraction is None:
            raise ConfigError("--early-stopping needs a validation split: add --val-fraction (e.g. 0.1)")
    try:
        check_weight_decay(args.weight_decay)
    except ConfigError:
        raise ConfigError(f"--weight-decay must be a finite number >= 0, got {args.weight_decay:g}") from None
    if args.optimizer == "lbfgs":
        raise ConfigError("--optimizer lbfgs is full-batch: train it with linear_nets.tuning.fit_softmax, "
                          "not the minibatch loop of train softmax")  # fmt: skip
    if args.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown --optimizer {args.optimizer!r}: choose one of sgd, momentum, adam")
    if args.schedule not in SCHEDULES:
        raise ConfigError(f"unknown --schedule {args.schedule!r}: choose one of {', '.join(SCHEDULES)}")
    if args.impl != "concise" and (args.optimizer != "sgd" or args.schedule != "constant"):
        raise ConfigError(f"--optimizer and --schedule need --impl concise ({args.impl} trains with plain SGD)")
    if args.standardize and args.resize is not None:
        raise ConfigError("--standardize is fitted on the 28 x 28 pixels: it cannot be combined with --resize")


def model_options(args: argparse.Namespace) -> dict:
    """Keyword arguments for the model class (runs saved before these flags existed get the defaults)."""
    options = {"weight_decay": getattr(args, "weight_decay", 0.0)}
    if args.impl == "concise":
        options["optimizer"] = getattr(args, "optimizer", "sgd")
    return options


def wrap_model(model: object, args: argparse.Namespace, num_inputs: int) -> object:
    """`Standardized(model)` under --standardize (statistics fitted later, or loaded with the model), else `model`."""
    if not getattr(args, "standardize", False):
        return model
    return Standardized(model, Standardizer(torch.zeros(num_inputs), torch.ones(num_inputs)))


def split_validation(train_iter: ArrayLoader, args: argparse.Namespace) -> tuple[ArrayLoader, ArrayLoader | None]:
    """(train loader over the rest, validation loader) under --val-fraction (split seeded by --seed), else
    (train_iter, None). The train loader keeps `train_iter`'s shuffling generator."""
    if args.val_fraction is None:
        return train_iter, None
    images, labels = train_iter.tensors
    train_idx, val_idx = train_val_split(labels, args.val_fraction, seed=args.seed)
    rest = ArrayLoader((images[train_idx], labels[train_idx]), train_iter.batch_size, shuffle=True,
                       resize=train_iter.resize, generator=train_iter.generator)  # fmt: skip
    val = ArrayLoader((images[val_idx], labels[val_idx]), train_iter.batch_size, resize=train_iter.resize)
    return rest, val


def fit_standardizer(model: object, train_iter: ArrayLoader) -> None:
    """Fit a `Standardized` model's statistics on the training split (in place); nothing for other models."""
    if isinstance(model, Standardized):
        fitted = Standardizer.fit(train_iter.tensors[0])
        model.load_state_tensors({**model.model.state_tensors(), "mean": fitted.mean, "std": fitted.std})


class EpochHooks:
    """What runs after each epoch under these flags: the schedule's step and early stopping.

    Create it after the model has moved to its device (early stopping keeps references to the parameters). Its
    state goes into each checkpoint (`state_tensors`) so that a resumed run continues exactly (`load_state_tensors`).
    """

    def __init__(self, args: argparse.Namespace, model: object, has_val: bool) -> None:
        self.model, self.args = model, args
        updater = model.updater
        self.optimizer = updater if isinstance(updater, torch.optim.Optimizer) else None
        self.scheduler = self._make_scheduler()
        self.stopper = EarlyStopping(parameters(model), args.early_stopping) if has_val else None

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        return make_scheduler(self.optimizer, self.args.schedule, self.args.epochs) if self.optimizer else None

    def __call__(self, record: EpochRecord) -> bool:
        if self.scheduler is not None:
            self.scheduler.step()
        return self.stopper is not None and self.stopper(record)

    def state_tensors(self) -> dict[str, Tensor]:
        """Early stopping's best epoch and weights, as named tensors (the schedule follows from the epoch)."""
        if self.stopper is None:
            return {}
        return with_prefix("early_stopping", self.stopper.state_tensors())

    def load_state_tensors(self, tensors: dict[str, Tensor], epochs_done: int) -> None:
        """Continue after `epochs_done` epochs: early stopping's state from the checkpoint, the schedule replayed."""
        if self.stopper is not None:
            self.stopper.load_state_tensors(under_prefix("early_stopping", tensors))
        if self.scheduler is not None:
            # The checkpoint holds the optimiser's lr of its last epoch; a schedule starts from the initial lr and
            # steps once per epoch, so rebuild it from there and replay the epochs done: the same lrs, bit for bit.
            for group in self.optimizer.param_groups:
                group["lr"] = group["initial_lr"]
            self.scheduler = self._make_scheduler()
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": no training here
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(epochs_done):
                    self.scheduler.step()

    def finish(self, test_iter) -> dict:
        """Restore the best epoch (with a validation split) and score the test set once; {} without one."""
        if self.stopper is None:
            return {}
        self.stopper.restore()
        return {
            "best_epoch": self.stopper.best_epoch,
            "val_accuracy": round(self.stopper.best_metric, 6),
            "test_accuracy": round(evaluate_accuracy(self.model.net, test_iter), 6),
        }
