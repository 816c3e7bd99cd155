"""Your own table through the one pipeline: the data flags (`TableOptions`: they describe data, not the fit, so they
sit beside the config), the table in memory (`load_in_memory`) or streamed (`StreamedTable`), both holding out the
same seeded test rows, and the metrics of a table fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from linear_nets.data.table_spec import TableSpec, fit_spec
from linear_nets.data.table_stream import (
    READ_ROWS,
    FeatureStats,
    stream_batches,
    stream_feature_stats,
    stream_least_squares,
)
from linear_nets.data.tables import (
    Holdout,
    TableInfo,
    check_table_memory,
    check_table_options,
    file_identity,
    load_table,
    open_table,
    recorded_file,
)
from linear_nets.pipeline.distributed import ALONE, World


@dataclass(frozen=True)
class TableOptions:
    """Where a table fit's data comes from (the `--data ...` flags of `train linreg` and `train softmax`): `data` and
    `target` as for `load_table` (`features` None: every other column); `categorical_coding` "onehot", "treatment"
    or "auto" (`coding`); the test rows are `test_data`'s, or about `test_fraction` of `data`'s (`Holdout`);
    `na_values` as for `open_table`; `stream` reads batch by batch instead of into memory.
    """

    data: str
    target: str
    features: list[str] | None = None
    categorical: list[str] = field(default_factory=list)
    test_data: str | None = None
    test_fraction: float = 0.2
    drop_missing: bool = False
    stream: bool = False
    categorical_coding: str = "auto"
    na_values: list[str] = field(default_factory=list)

    def check(self) -> TableOptions:
        """Return self, or raise `ConfigError` naming the field (`check_table_options`)."""
        check_table_options(self.test_fraction, self.categorical_coding)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def coding(self, least_squares_with_intercept: bool) -> TableOptions:
        """These options with "auto" decided: treatment coding for least squares with an intercept, else one-hot."""
        if self.categorical_coding != "auto":
            return self
        return replace(self, categorical_coding="treatment" if least_squares_with_intercept else "onehot")


@dataclass
class TableData:
    """A table split into training and test rows, as tensors, with its schema and what the files held."""

    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor] | None
    spec: TableSpec
    info: TableInfo
    rows_dropped: int = 0
    test_info: TableInfo | None = None

    def record(self) -> dict[str, Any]:
        """What a run's config.json records of the data: the table, its schema, rows, and each file's identity."""
        test_rows = 0 if self.test is None else len(self.test[1])
        record = {"table": self.info.to_dict(), "spec": self.spec.to_dict(), "rows_dropped": self.rows_dropped,
                  "train_rows": len(self.train[1]), "test_rows": test_rows, "file": file_identity(self.info.path)}
        if self.test_info is not None:
            record["test_file"] = file_identity(self.test_info.path)
        return record  # fmt: skip


def load_in_memory(options: TableOptions, task: str, seed: int, dtype: torch.dtype = torch.float32) -> TableData:
    """Read the table (and `test_data`) into tensors once; hold out the seeded test rows (`LoadedTable.split`).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n" + "".join(f"{i},{2 * i + 1}\\n" for i in range(10)))
        >>> data = load_in_memory(TableOptions(str(path), "y", test_fraction=0.3), "regression", seed=0)
        >>> len(data.train[1]), len(data.test[1]), data.spec.feature_names
        (7, 3, ['x'])
    """
    coding = options.check().coding(False).categorical_coding
    loaded = load_table(options.data, options.target, task=task, features=options.features,
                        categorical=options.categorical, drop_missing=options.drop_missing, dtype=dtype,
                        coding=coding, na_values=options.na_values)  # fmt: skip
    train, test, test_info, dropped = (loaded.X, loaded.y), None, None, loaded.rows_dropped
    if options.test_data is not None:
        other = load_table(options.test_data, options.target, spec=loaded.spec, drop_missing=options.drop_missing,
                           dtype=dtype, na_values=options.na_values)  # fmt: skip
        test, test_info, dropped = (other.X, other.y), other.info, dropped + other.rows_dropped
    elif options.test_fraction > 0:
        train, test = loaded.split(options.test_fraction, seed)
        test = test if len(test[1]) else None  # a tiny table may hold out no row: then no test set
    return TableData(train, test, loaded.spec, loaded.info, dropped, test_info)


class StreamedTable:
    """A table read batch by batch: the training rows are those `Holdout` keeps, the rest (or `test_data`) test it;
    the training schema is fitted in one streamed pass."""

    def __init__(self, options: TableOptions, seed: int, task: str = "regression") -> None:
        self.options, self.seed, self.task = options.check(), seed, task
        self.source = open_table(options.data, options.na_values)
        self.spec = spec = fit_spec(self.source, options.target, task=task, features=options.features,
                                    categorical=options.categorical, drop_missing=options.drop_missing,
                                    coding=options.coding(False).categorical_coding)  # fmt: skip
        check_table_memory(f"streaming {self.source.name} ({READ_ROWS:,} rows at a time x {spec.num_features:,} "
                           "features, 8 bytes each)", 2 * 8 * READ_ROWS * spec.num_features, streamed=True)  # fmt: skip
        self.info = self.source.info()
        self.classes = list(spec.classes) if task == "classification" else None
        self.num_inputs = spec.num_features
        self.test_source = None  # `--test-data`: every row of it tests, every row of `data` trains
        if options.test_data is not None:
            self.test_source = open_table(options.test_data, options.na_values)
            spec.check_columns(self.test_source.schema, where=self.test_source.name)

    @property
    def has_test(self) -> bool:
        """Whether there are test rows: a `--test-data` file, or a share of `data` held out."""
        return self.test_source is not None or self.options.test_fraction > 0

    def holdout(self, part: str) -> Holdout | None:
        if self.test_source is not None or (part == "train" and self.options.test_fraction == 0):
            return None
        return Holdout(self.options.test_fraction, self.seed, part=part)

    def least_squares(self, world: World = ALONE, **solver: Any) -> Any:
        """The least-squares fit over the training rows (an `ols.OLSResult`); in a data-parallel fit each process reads
        every `world.size`-th part. `solver`: fit_intercept, method, cov_type, alpha."""
        parts = self.source.parts()[world.rank :: world.size] if world.launched else None
        return stream_least_squares(self.source, self.spec, drop_missing=self.options.drop_missing,
                                    holdout=self.holdout("train"), parts=parts,
                                    gather=world.gather if world.launched else None, **solver)  # fmt: skip

    def feature_stats(self) -> FeatureStats:
        """Mean and std of each feature over the training rows (for `--standardize`)."""
        return stream_feature_stats(self.source, self.spec, drop_missing=self.options.drop_missing,
                                    holdout=self.holdout("train"))  # fmt: skip

    def batches(self, part: str, batch_size: int, epoch: int = 0, shuffle: bool = True,
                dtype: torch.dtype = torch.float32) -> Iterator:  # fmt: skip
        """One epoch of (X, y) batches of the `part` rows ("train" or "test"), X and a regression's y of `dtype`."""
        source = self.test_source if part == "test" and self.test_source is not None else self.source
        return stream_batches(source, self.spec, batch_size, seed=self.seed, epoch=epoch, shuffle=shuffle,
                              drop_missing=self.options.drop_missing, holdout=self.holdout(part),
                              dtype=dtype)  # fmt: skip

    def record(self) -> dict[str, Any]:
        record = {"table": self.info.to_dict(), "spec": self.spec.to_dict(), "streamed": True,
                  "file": file_identity(self.options.data)}  # fmt: skip
        if self.test_source is not None:
            test = self.test_source
            record |= {"test_table": test.info().to_dict(), "test_file": file_identity(test.path)}
        return record


def held_out_rows(options: TableOptions, spec: TableSpec, seed: int, files: dict[str, Any],
                  dtype: torch.dtype = torch.float32, part: str = "test") -> tuple[Iterator | list, str]:  # fmt: skip
    """The test rows a table run held out (`part` "train": the rows it trained on instead), as (X, y) batches encoded
    by the run's `spec`, and where they come from in words. `files` is what the run recorded of its files (`file`,
    `test_file`); one that changed since is a `DataError` (`recorded_file`)."""
    if options.test_data is not None and part == "test":  # every row of it tests
        path = recorded_file(options.test_data, files.get("test_file"), "test table")
        where, holdout = f"its test table {path}", None
    elif options.test_data is not None:  # every row of the training table trains
        path = recorded_file(options.data, files.get("file"))
        where, holdout = str(path), None
    else:
        path = recorded_file(options.data, files.get("file"))
        side = "held out" if part == "test" else "not held out"
        where = f"the {options.test_fraction:g} of {path} {side} by seed {seed}"
        holdout = Holdout(options.test_fraction, seed, part=part)
    if options.stream:  # as large as the training file, perhaps: streamed, in file order
        options.check()  # a recorded test_fraction out of range: a ConfigError, as StreamedTable raises it
        source = open_table(path, options.na_values)
        spec.check_columns(source.schema, where=source.name)
        rows = stream_batches(source, spec, 1 << 16, shuffle=False, drop_missing=options.drop_missing,
                              holdout=holdout, dtype=dtype)  # fmt: skip
        return _regression_column(rows, spec.task), where
    loaded = load_table(path, spec.target, spec=spec, drop_missing=options.drop_missing, dtype=dtype,
                        na_values=options.na_values)  # fmt: skip
    if holdout is None:
        return [(loaded.X, loaded.y)], where
    train, test = loaded.split(options.test_fraction, seed)
    return [test if part == "test" else train], where


def _regression_column(batches: Iterator, task: str) -> Iterator:
    """(X, y) batches with a regression target as a column `[n, 1]`, as `EpochLoader` yields them."""
    for X, y in batches:
        yield X, (y.reshape(-1, 1) if task == "regression" else y)


class EpochLoader:
    """A re-iterable loader over a streamed table: epoch k draws the k-th order (a resumed fit sets `epoch`). `part`
    is "train" (shuffled) or "test" (file order); `transform` applies to each X (standardisation)."""

    def __init__(self, table: StreamedTable, batch_size: int, transform: Any = None, part: str = "train") -> None:
        self.table, self.batch_size, self.transform, self.part, self.epoch = table, batch_size, transform, part, 0

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        self.epoch += 1
        shuffle = self.part == "train"
        batches = self.table.batches(self.part, self.batch_size, self.epoch if shuffle else 0, shuffle=shuffle)
        for X, y in _regression_column(batches, self.table.task):
            yield (self.transform(X) if self.transform is not None else X), y


@dataclass
class RegressionScores:
    """Mean squared error (plain mean of (ŷ − y)², not the book's halved loss) and R² = 1 − SSE / SST."""

    mse: float
    r2: float
    rows: int


def regression_scores(batches: Any, w: Tensor, b: Tensor) -> RegressionScores:
    """MSE and R² of y ≈ Xw + b over (X, y) batches, accumulated in float64 (one pass; works streamed).

    Example:
        >>> X = torch.tensor([[0.0], [1.0], [2.0]]); y = torch.tensor([1.0, 3.0, 6.0])
        >>> s = regression_scores([(X, y)], torch.tensor([2.0], dtype=torch.float64), torch.tensor(1.0))
        >>> round(s.mse, 4), round(s.r2, 4)
        (0.3333, 0.9211)
    """
    sse, total, total_sq, n = 0.0, 0.0, 0.0, 0
    for X, y in batches:
        y = y.to(torch.float64).reshape(-1)
        residual = X.to(torch.float64) @ w.to(torch.float64) + b.to(torch.float64) - y
        sse += float(residual.square().sum())
        total += float(y.sum())
        total_sq += float(y.square().sum())
        n += len(y)
    if n == 0:
        return RegressionScores(math.nan, math.nan, 0)
    sst = total_sq - total * total / n
    return RegressionScores(sse / n, 1 - sse / sst if sst > 0 else math.nan, n)
