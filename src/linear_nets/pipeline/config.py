"""One vocabulary per model family: a config dataclass whose fields are the CLI's flags and the estimators' parameters.

Every field is declared once, its default and `Param` (type, range or choices, help) in one `option(...)` that drives
`validate`, `add_arguments` and `from_args`, so they cannot drift apart. No torch here: `--help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from linear_nets.checks import check_memory
from linear_nets.choices import (
    COV_TYPES,
    DEVICES,
    IMPLS,
    LEAST_SQUARES,
    LOSSES,
    OPTIMIZERS,
    SAMPLING,
    SCHEDULES,
    SOLVERS,
)
from linear_nets.errors import ConfigError, flag

MAX_THREADS = 1024
"""Most CPU threads `--threads` takes: a million made torch and pyarrow's thread pools fail (exit 139, malloc)."""
MAX_SEED = 2**63 - 1
"""Seeds are 0 to 2**63 - 1: what torch's generators, numpy and every JSON reader take without loss."""
IMAGE_CLASSES = 10
"""Classes of the images `resize` applies to (Fashion-MNIST), for the size of the weights."""


@dataclass(frozen=True)
class Param:
    """One field of a config: its `kind` (`int`, `float`, `str`, `bool` (an on/off flag) or `tuple` (finite numbers
    given as `2,-3.4`)), the `choices` of a `str`, the bounds of a number (`low_open` / `high_open` exclude them),
    whether None is allowed, and `machine`: where and how fast, not what, so it may change on resume."""

    name: str
    kind: type
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    machine: bool = False

    @property
    def flag(self) -> str:
        return flag(self.name)

    def describe(self) -> str:
        """The allowed values in words, for an error message.

        Example:
            >>> Param("lr", float, "", low=0, low_open=True).describe()
            'a finite number > 0'
        """
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        words = {bool: "true or false", tuple: "a non-empty list of finite numbers", str: "a string"}
        if self.kind in words:
            return words[self.kind]
        noun = "an integer" if self.kind is int else "a finite number"
        shown = (lambda v: f"{v}") if self.kind is int else (lambda v: f"{v:g}")  # 2**63 - 1 exactly, not 9.2e18
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {shown(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {shown(self.high)}")
        return f"{noun} {' and '.join(parts)}".rstrip()

    def check(self, value: Any) -> None:
        """Raise `ConfigError` naming the field unless `value` is allowed; a value of the field's kind is shown as the
        command line takes it (`2,-3.4`, `fast`), another as Python writes it (`'0.3'`)."""
        if value is None and self.optional:
            return
        ok = _has_kind(value, self.kind) and (self.choices is None or value in self.choices)
        if ok and self.kind in (int, float):
            above = self.low is None or (value > self.low if self.low_open else value >= self.low)
            below = self.high is None or (value < self.high if self.high_open else value <= self.high)
            ok = math.isfinite(value) and above and below
        if not ok:
            shown = joined(value) if _is_numbers(value) else f"{value}" if _has_kind(value, self.kind) else repr(value)
            raise ConfigError(f"{self.name} must be {self.describe()}, got {shown}", self.name)


def _is_numbers(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(_has_kind(v, float) for v in value)


def _has_kind(value: Any, kind: type) -> bool:
    if kind is tuple:
        return _is_numbers(value) and len(value) > 0 and all(math.isfinite(v) for v in value)
    if kind is bool or isinstance(value, bool):  # True is an int to Python, not to a config
        return kind is bool and isinstance(value, bool)
    return isinstance(value, int | float if kind is float else kind)


def option(default: Any, kind: type, help: str, **constraints: Any) -> Any:
    """A config field: its default, and its `Param`'s attributes as metadata that `declared` collects."""
    return dataclasses.field(default=default, metadata={"param": {"kind": kind, "help": help, **constraints}})


def declared(cls: type) -> type:
    """The config class with `PARAMS`, its fields' `Param`s in declaration order (see `option`)."""
    cls.PARAMS = tuple(Param(f.name, **f.metadata["param"]) for f in fields(cls))
    return cls


def _positive_int(default: int | None, help: str, **kw: Any) -> Any:
    return option(default, int, help, low=1, **kw)


def _sampling() -> Any:
    return option("shuffle", str, "minibatches per epoch: shuffle (last short batch kept), shuffle-drop-last, "
                  "shuffle-fill (last batch filled up at random), with-replacement", choices=SAMPLING)


def joined(values: Any) -> str:
    """Numbers as the command line writes a list of them: `2,-3.4`."""
    return ",".join(f"{v:g}" for v in values)


@declared
@dataclass(frozen=True)
class SoftmaxConfig:
    """Everything that decides a softmax-regression fit: the flags of `linear-nets train softmax`.

    Example:
        >>> validate(SoftmaxConfig(batch_size=0))
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: batch_size must be an integer >= 1, got 0
    """

    # manual: the fastest of the three, and the same weights for one seed (tests/test_softmax_regression)
    impl: str = option("manual", str, "scratch (autograd), manual (hand-derived gradients) or concise (torch.nn)",
                       choices=IMPLS)
    optimizer: str = option("sgd", str, "sgd (the book's), momentum, adam, or lbfgs (full batch); concise only",
                            choices=OPTIMIZERS)
    lr: float = option(0.1, float, "learning rate", low=0, low_open=True)
    weight_decay: float = option(0.0, float, "L2 penalty (wd / 2) ||W||² on the weights", low=0)
    batch_size: int = _positive_int(256, "examples per minibatch")
    epochs: int = _positive_int(10, "passes over the training set (at most, with early stopping)")
    schedule: str = option("constant", str, "learning rate per epoch: constant, step (x0.1 at 1/2 and 3/4) or cosine",
                           choices=SCHEDULES)
    sampling: str = _sampling()
    standardize: bool = option(False, bool, "standardise each input with the training split's mean and std")
    val_fraction: float | None = option(None, float, "hold out this share of each class for validation", low=0,
                                        high=1, low_open=True, high_open=True, optional=True)
    early_stopping: int | None = _positive_int(None, "stop after this many epochs without a better validation "
                                               "accuracy", optional=True)
    resize: int | None = _positive_int(None, "resize images to N x N", optional=True)
    seed: int = option(0, int, "fixes initialisation, shuffling and the validation split", low=0, high=MAX_SEED)
    device: str = option("cpu", str, "cpu, cuda, or auto (cuda when there is one)", choices=DEVICES, machine=True)
    threads: int | None = _positive_int(None, "torch CPU threads; default: the cores no other process is using at "
                                        "the start, shared between this machine's processes (recorded in "
                                        "config.json)", optional=True, machine=True, high=MAX_THREADS)

    PARAMS: ClassVar[tuple[Param, ...]]  # from the fields (`declared`)

    def rules(self) -> None:
        """The rules between fields; `validate` calls it after checking each field alone."""
        if self.impl != "concise" and self.optimizer != "sgd":
            raise ConfigError(f"optimizer {self.optimizer} needs impl concise: the {self.impl} implementation trains "
                              "with the book's plain SGD", "optimizer", "impl")  # fmt: skip
        if self.early_stopping is not None and self.val_fraction is None:
            raise ConfigError("early_stopping needs a validation split: set val_fraction (e.g. 0.1)", "early_stopping",
                              "val_fraction")  # fmt: skip
        if self.standardize and self.resize is not None:
            raise ConfigError("standardize is fitted on the 28 x 28 pixels: it cannot be combined with resize",
                              "standardize", "resize")  # fmt: skip
        if self.optimizer == "lbfgs" and self.schedule != "constant":
            raise ConfigError("optimizer lbfgs chooses its own step sizes: use schedule constant", "optimizer",
                              "schedule")  # fmt: skip

    def footprint(self, examples: int | None = None) -> list[tuple[str, int]]:
        """What the fields make the fit allocate, in bytes, by the fields that size it: with `resize`, a float32 batch
        of `batch_size` (at most `examples`) resized images, and the weights and their gradient (`resize`² rows)."""
        if self.resize is None:
            return []
        batch = 1 if examples is None else min(self.batch_size, examples)
        what = f"resize {self.resize}" + (f" with batch_size {self.batch_size}" if batch > 1 else "")
        return [(what, 4 * self.resize**2 * (batch + 2 * IMAGE_CLASSES))]


@declared
@dataclass(frozen=True)
class LinregConfig:
    """Everything that decides a linear-regression fit: the flags of `linear-nets train linreg`.

    Example:
        >>> validate(LinregConfig(solver="closed-form", loss="huber"))
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: solver closed-form minimises squared errors; it cannot use loss huber
    """

    impl: str = option("scratch", str, "scratch (autograd), manual (hand-derived gradients) or concise (torch.nn)",
                       choices=IMPLS)
    loss: str = option("squared", str, "squared, l1 (absolute) or huber", choices=LOSSES)
    huber_delta: float | None = option(None, float, "Huber threshold δ: quadratic inside [-δ, δ], linear outside "
                                       "(default: 1)", low=0, low_open=True, optional=True)
    solver: str = option("sgd", str, "sgd; closed-form least squares (QR, with the OLS summary; squared loss; ignores "
                         "lr, epochs, batch size); or normal-equations, the book's (AᵀA)⁻¹Aᵀy, which loses digits",
                         choices=SOLVERS)
    lr: float = option(0.03, float, "learning rate", low=0, low_open=True)
    epochs: int = _positive_int(3, "passes over the data")
    batch_size: int = _positive_int(10, "examples per minibatch")
    sampling: str = _sampling()
    standardize: bool = option(False, bool, "fit on standardised features (training rows' mean and std); "
                               "coefficients are reported in the original units")
    no_intercept: bool = option(False, bool, "fit through the origin, y ≈ Xw (least squares only; R² is then "
                                "uncentred)")
    cov: str = option("nonrobust", str, "the coefficients' covariance: nonrobust, or heteroscedasticity-robust HC0, "
                      "HC1, HC2, HC3 (least squares only; robust ones read a streamed table twice)", choices=COV_TYPES)
    alpha: float = option(0.05, float, "the intervals are at confidence 1 - alpha (least squares only)", low=0,
                          high=1, low_open=True, high_open=True)
    seed: int = option(0, int, "fixes initialisation and shuffling (and the synthetic data)", low=0, high=MAX_SEED)

    PARAMS: ClassVar[tuple[Param, ...]]  # from the fields (`declared`)

    def rules(self) -> None:
        """The rules between fields (a message says "squared errors", not "squared loss": `loss` is a field)."""
        if self.huber_delta is not None and self.loss != "huber":
            raise ConfigError(f"huber_delta applies to loss huber only, not {self.loss}", "huber_delta", "loss")
        if self.solver in LEAST_SQUARES and self.loss != "squared":
            raise ConfigError(f"solver {self.solver} minimises squared errors; it cannot use loss {self.loss}",
                              "solver", "loss")  # fmt: skip
        if self.solver not in LEAST_SQUARES:
            for name, default in (("no_intercept", False), ("cov", "nonrobust"), ("alpha", 0.05)):
                if getattr(self, name) != default:
                    raise ConfigError(f"{name} applies to the least-squares solvers (closed-form, normal-equations), "
                                      f"not solver {self.solver}", name, "solver")  # fmt: skip

    def footprint(self, examples: int | None = None) -> list[tuple[str, int]]:
        """Nothing: the data (`SyntheticData`, a table) sizes a linear-regression fit, not these flags."""
        return []


@declared
@dataclass(frozen=True)
class SyntheticData:
    """The synthetic problem y = Xw + b + ε, ε ~ N(0, noise²), X ~ N(0, 1) (d2l 3.2): the data flags of
    `linear-nets train linreg`, also drawn by `linear-nets plot regression`.

    Example:
        >>> validate(SyntheticData(samples=0))
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: samples must be an integer >= 1, got 0
    """

    true_w: tuple[float, ...] = option((2.0, -3.4), tuple, "the true weights w, one per feature")
    true_b: float = option(4.2, float, "the true bias b")
    samples: int = _positive_int(1000, "number of examples")
    noise: float = option(0.01, float, "noise std σ", low=0)

    PARAMS: ClassVar[tuple[Param, ...]]  # from the fields (`declared`)

    def rules(self) -> None:
        """None: each field stands alone."""

    def footprint(self, examples: int | None = None) -> list[tuple[str, int]]:
        """The data itself: X (`samples` x features) and y, float32."""
        features = len(self.true_w)
        what = f"samples {self.samples} of {features} feature{'s' * (features != 1)}"
        return [(what, 4 * self.samples * (features + 1))]


Config = SoftmaxConfig | LinregConfig | SyntheticData

SEED = Param("seed", int, "fixes the random draws", low=0, high=MAX_SEED)
"""The seed of commands without a config (`plot regression`, `data show`): the same range as the configs' seeds."""
VECTOR_LENGTH = Param("n", int, "vector length", low=1, high=1_000_000)
"""`plot vectorization --n`: a limit in time, not memory: the Python loop it times 5 times takes 2 s per 100,000."""


def validate(config: Config, *, examples: int | None = None) -> Config:
    """Return `config` unchanged, or raise `ConfigError` naming the first field out of range, the fields a rule
    between them refuses, or the fields whose memory (`footprint`, for a training set of `examples` when known) this
    machine lacks."""
    for param in config.PARAMS:
        param.check(getattr(config, param.name))
    config.rules()
    for what, need in config.footprint(examples):
        try:
            check_memory(what, need)
        except ConfigError as exc:  # `what` names the fields that size it, by their names
            raise ConfigError(str(exc), *(p.name for p in config.PARAMS if p.name in what.split())) from None
    return config


SOFTMAX_PRESETS: dict[str, SoftmaxConfig] = {
    "book": SoftmaxConfig(),
    # Chosen by `linear-nets tune softmax` and the sweep in benchmarks/bench_best.py (benchmarks/RESULTS.md).
    "best": SoftmaxConfig(
        impl="concise",
        optimizer="momentum",
        lr=0.01,
        weight_decay=0.0,  # the sweep: 0, 1e-4 and 1e-3 within 0.001 of each other on validation; 0 was best
        batch_size=256,
        epochs=8,
        schedule="cosine",
        standardize=True,
        val_fraction=0.1,
        early_stopping=5,
    ),
}
"""Named configurations for `--preset`: `book` (d2l 3.7) and `best` (the best found on a validation split)."""

TUNING_GRID: dict[str, list] = {"lr": [0.003, 0.01, 0.03], "weight_decay": [0.0, 1e-4, 1e-3], "batch_size": [256]}
"""The search `linear-nets tune softmax` runs by default around the best preset: 9 fits."""

MACHINE_FIELDS = frozenset(p.name for cls in (SoftmaxConfig, LinregConfig) for p in cls.PARAMS if p.machine)


def add_arguments(parser: argparse.ArgumentParser, cls: type[Config]) -> None:
    """One flag per field of `cls`, defaulting to None ("not given"), so `from_args` can tell given from default;
    ranges and choices are left to `validate`, so every range error reads the same from the command line and Python.
    """
    defaults = cls()
    for p in cls.PARAMS:
        default = getattr(defaults, p.name)
        shown = f" (default: {default})" if default is not None and p.kind is not bool else ""
        if p.kind is bool:
            parser.add_argument(p.flag, action="store_const", const=True, default=None, help=p.help)
        elif p.kind is tuple:
            parser.add_argument(p.flag, type=number_list, default=None, metavar="X1,X2,...",
                                help=f"{p.help} (default: {joined(default)})")  # fmt: skip
        else:
            metavar = "{" + ",".join(p.choices) + "}" if p.choices else p.name.upper()
            parser.add_argument(p.flag, type=p.kind, default=None, metavar=metavar, help=p.help + shown)


def number_list(text: str) -> tuple[float, ...]:
    """argparse type of a `tuple` field: comma-separated numbers (their range is `validate`'s question)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 2,-3.4, got {text!r}") from None


def given_fields(args: argparse.Namespace, cls: type[Config]) -> dict[str, Any]:
    """The fields of `cls` whose flags were given on the command line."""
    return {p.name: getattr(args, p.name) for p in cls.PARAMS if getattr(args, p.name, None) is not None}


def from_args(cls: type[Config], args: argparse.Namespace, base: Config | None = None) -> Config:
    """The config the flags describe: `base` (default: the defaults) with every given flag applied, validated.

    Example:
        >>> parser = argparse.ArgumentParser(); add_arguments(parser, SoftmaxConfig)
        >>> from_args(SoftmaxConfig, parser.parse_args(["--lr", "0.3", "--standardize"])).lr
        0.3
    """
    base = base if base is not None else cls()
    return validate(dataclasses.replace(base, **given_fields(args, cls)))


def to_dict(config: Config) -> dict[str, Any]:
    """The fields as a plain dict (for config.json)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[Config], values: Mapping[str, Any]) -> Config:
    """The config saved by `to_dict` (unknown keys refused; missing keys take today's defaults), validated."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    lists = {p.name for p in cls.PARAMS if p.kind is tuple}  # JSON has no tuples
    return validate(cls(**{k: tuple(v) if k in lists and isinstance(v, list) else v for k, v in values.items()}))


def grid_configs(base: SoftmaxConfig, grid: Mapping[str, Sequence]) -> list[SoftmaxConfig]:
    """Every combination of the values in `grid` (field -> values), other fields from `base`, in a fixed order, each
    validated before anything trains (`from_dict`). A search is judged on a validation split: `base` needs one.

    Example:
        >>> base = SoftmaxConfig(val_fraction=0.1)
        >>> [(c.lr, c.batch_size) for c in grid_configs(base, {"lr": [0.1, 0.3], "batch_size": [64]})]
        [(0.1, 64), (0.3, 64)]
    """
    if base.val_fraction is None:
        raise ConfigError("tuning needs a validation split: give base a val_fraction between 0 and 1")
    for name, values in grid.items():
        if not values:
            raise ConfigError(f"grid: give at least one value of {name}")
    combos = itertools.product(*grid.values())
    return [from_dict(type(base), {**to_dict(base), **dict(zip(grid, values, strict=True))}) for values in combos]


def as_flags(config: Config, base: Config | None = None) -> str:
    """The command-line flags that reproduce `config` (those that differ from `base`, default the defaults).

    Example:
        >>> as_flags(SoftmaxConfig(lr=0.3, standardize=True))
        '--lr 0.3 --standardize'
    """
    base = base if base is not None else type(config)()
    parts: list[str] = []
    for p in config.PARAMS:
        value = getattr(config, p.name)
        if value == getattr(base, p.name) or p.machine:
            continue
        parts.append(p.flag if value is True else f"{p.flag} {joined(value) if p.kind is tuple else value}")
    return " ".join(parts)
