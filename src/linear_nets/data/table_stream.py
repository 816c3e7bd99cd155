"""Tables larger than memory: shuffled minibatches for SGD, the one-pass closed form, and feature statistics, each
read part by part and encoded with a fitted `TableSpec` (the next batch in a background thread).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from linear_nets.checks import check_design, check_design_end
from linear_nets.data.table_spec import TableSpec
from linear_nets.data.tables import Holdout, TablePart, TableSource, check_rows_left
from linear_nets.errors import DataError
from linear_nets.regularization import FeatureStats, Moments

READ_ROWS = 1 << 16  # rows per record batch read from a Parquet row group
# The closed form keeps no rows: larger batches, fewer calls into pyarrow and BLAS (benchmarks/RESULTS-tables.md).
# Memory: two float64 buffers of this many rows (38 MB each for 32 features), whatever the number of rows; the
# memory check of a streamed table (`pipeline.tables.StreamedTable`) counts READ_ROWS, half of that.
LEAST_SQUARES_READ_ROWS = 1 << 17

T = TypeVar("T")
RowNumber = Callable[[int], int]  # row i of a batch -> its 1-based number in the file


@dataclass
class RowCounts:
    """Rows seen by a streamed pass: read from the file, held out by a `Holdout`, dropped for a missing value."""

    rows_read: int = 0
    rows_held_out: int = 0
    rows_dropped: int = 0

    @property
    def rows_used(self) -> int:
        return self.rows_read - self.rows_held_out - self.rows_dropped


def _selected_rows(
    source: TableSource,
    spec: TableSpec,
    parts: list[TablePart] | None,
    drop_missing: bool,
    holdout: Holdout | None,
    counts: RowCounts | None,
    read_rows: int,
) -> Iterator[tuple[pa.Table, RowNumber]]:
    """Each record batch of `parts` (default: all) as (table, row_number), less held-out and (maybe) missing rows."""
    spec.check_columns(source.schema, where=source.name)
    counts = RowCounts() if counts is None else counts
    columns, types = [*spec.features, spec.target], spec.read_types()
    for part in source.parts() if parts is None else parts:
        offset = part.first_row
        for batch in part.batches(columns, types, read_rows):
            n, rows = batch.num_rows, None
            if holdout is not None:
                keep = holdout.keep(np.arange(offset, offset + n))
                batch, rows = batch.filter(keep), np.flatnonzero(keep)
                counts.rows_held_out += n - batch.num_rows
            table, kept, number = spec.select_rows(batch, drop_missing=drop_missing, first_row=offset + 1, rows=rows)
            counts.rows_read += n
            counts.rows_dropped += batch.num_rows - len(kept)
            offset += n
            if len(kept):
                yield table, number


_END = object()


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, each made in a background thread while the caller works on the one before (one ahead)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="table-read-ahead")
    try:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item
    finally:
        pool.shutdown(wait=True)  # the item in flight is finished before the generator is closed, in this thread
        items.close()  # type: ignore[attr-defined]


def stream_batches(
    source: TableSource,
    spec: TableSpec,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    shuffle_buffer: int = 1 << 16,
    drop_missing: bool = False,
    holdout: Holdout | None = None,
    dtype: torch.dtype = torch.float32,
    counts: RowCounts | None = None,
    read_rows: int = READ_ROWS,
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of (X, y) minibatches of `batch_size` rows (the last may be smaller), streamed from `source`.

    With `shuffle` the parts are read in a random order and rows pass through a shuffle buffer: once it holds
    `shuffle_buffer` rows it is permuted, full batches leave from its front, and about half stays to mix with the
    next rows (a buffer of 0 or 1 shuffles the parts only). The order depends only on (seed, epoch); every row comes
    once per epoch. Without `shuffle`: file order. `holdout` keeps only its side of the split, `counts` tallies rows.

    Example:
        >>> import tempfile, pathlib
        >>> from linear_nets.data.tables import open_table
        >>> from linear_nets.data.table_spec import fit_spec
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n" + "".join(f"{i},{2 * i}\\n" for i in range(10)))
        >>> source = open_table(path); spec = fit_spec(source, "y")
        >>> [X[:, 0].tolist() for X, _ in stream_batches(source, spec, 4, seed=0, shuffle_buffer=8)]
        [[0.0, 1.0, 3.0, 9.0], [8.0, 4.0, 7.0, 6.0], [2.0, 5.0]]
    """
    parts = source.parts()
    generator = None
    if shuffle:
        rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
        parts = [parts[i] for i in rng.permutation(len(parts))]
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
    selected = _selected_rows(source, spec, parts, drop_missing, holdout, counts, read_rows)
    chunks = _read_ahead(spec.encode_selected(table, row_number, dtype) for table, row_number in selected)
    buffer_rows = shuffle_buffer if shuffle and shuffle_buffer > 1 else 0
    X_buf = y_buf = None
    for X, y in chunks:
        X_buf, y_buf = (X, y) if X_buf is None else (torch.cat([X_buf, X]), torch.cat([y_buf, y]))
        if len(X_buf) >= max(buffer_rows, batch_size):
            X_buf, y_buf = yield from _cut(X_buf, y_buf, batch_size, buffer_rows, generator)
    if X_buf is not None and len(X_buf):
        yield from _cut(X_buf, y_buf, batch_size, buffer_rows, generator, last=True)


def _cut(X: Tensor, y: Tensor, batch_size: int, buffer_rows: int, generator: torch.Generator | None,
         last: bool = False) -> Generator[tuple[Tensor, Tensor], None, tuple[Tensor, Tensor]]:  # fmt: skip
    """Permute the buffer (when shuffling) and yield its full batches, keeping about `buffer_rows` / 2 rows to mix
    with the next ones read; return those. The `last` time every row goes, the last batch perhaps short."""
    if buffer_rows:
        order = torch.randperm(len(X), generator=generator)
        X, y = X.index_select(0, order), y.index_select(0, order)
    stop = len(X) if last else (len(X) - buffer_rows // 2) // batch_size * batch_size
    for start in range(0, stop, batch_size):
        yield X[start : start + batch_size], y[start : start + batch_size]
    return X[stop:], y[stop:]


def stream_least_squares(
    source: TableSource,
    spec: TableSpec,
    *,
    drop_missing: bool = False,
    holdout: Holdout | None = None,
    counts: RowCounts | None = None,
    read_rows: int = LEAST_SQUARES_READ_ROWS,
    parts: list[TablePart] | None = None,
    gather: Callable[[Any], list[Any]] | None = None,
    fit_intercept: bool = True,
    method: str = "qr",
    cov_type: str = "nonrobust",
    alpha: float = 0.05,
) -> Any:
    """Least squares y ≈ Xw + b over a streamed table with its OLS statistics (`closed_form.fit_least_squares`, an
    `ols.OLSResult`): each batch encoded into Zᵀ = [X, 1, y]ᵀ in float64 and folded into R (TSQR), in O(d²) memory.
    Data-parallel: each process reads `parts` and `gather` collects every process's factor. Raises DataError as
    `TableSpec.encode` does, or when no rows are left.

    Example:
        >>> import tempfile, pathlib
        >>> from linear_nets.data.tables import open_table
        >>> from linear_nets.data.table_spec import fit_spec
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n0,1\\n1,3\\n2,5.5\\n")
        >>> source = open_table(path)
        >>> result = stream_least_squares(source, fit_spec(source, "y"))
        >>> round(float(result.w[0]), 6), round(result.b, 6), round(float(result.bse[0]), 6)
        (2.25, 0.916667, 0.144338)
    """
    from linear_nets.closed_form import fit_least_squares

    passes, current = [0], []

    def chunks() -> Iterator[np.ndarray]:
        passes[0] += 1
        tally = counts if passes[0] == 1 else None  # count the rows once, in the first pass
        selected = _selected_rows(source, spec, parts, drop_missing, holdout, tally, read_rows)
        largest = None
        for table, row_number, Zt in _read_ahead(_design_chunks(spec, selected, fit_intercept)):
            current[:] = [table, row_number]  # the rows the solver works on now (read-ahead is one further)
            if passes[0] == 1:
                largest = check_design(Zt, spec.feature_names, largest)
            yield Zt
        if passes[0] == 1:
            check_design_end(largest, spec.feature_names, f"no rows of {source.name} are left to fit (all held out "
                             "or missing values)", gather)  # fmt: skip

    try:
        return fit_least_squares(chunks, spec.feature_names, fit_intercept=fit_intercept, method=method,
                                 cov_type=cov_type, alpha=alpha, gather=gather)  # fmt: skip
    except DataError:
        if current:  # a NaN or ±inf in the rows being folded: read again column by column, it is named with its row
            table, row_number = current
            for name in [*spec.features, spec.target]:  # (a category that is not one was refused when read)
                if name not in spec.categories:
                    spec.numbers(table, name, row_number)
        raise


def _design_chunks(
    spec: TableSpec, selected: Iterator[tuple[pa.Table, RowNumber]], fit_intercept: bool = True
) -> Iterator[tuple[pa.Table, RowNumber, np.ndarray]]:
    """Each table with Zᵀ = [X, 1, y]ᵀ in float64, in two buffers used in turn (`_read_ahead` fills the other)."""
    d = spec.num_features
    buffers: list[np.ndarray | None] = [None, None]
    for k, (table, row_number) in enumerate(selected):
        n, i = table.num_rows, k % 2
        buffer = buffers[i]
        if buffer is None or buffer.shape[1] < n:
            buffer = buffers[i] = np.empty((d + 1 + fit_intercept, n))
            buffer[d : d + fit_intercept] = 1
        Zt = buffer[:, :n]
        spec.write_features(table, Zt[:d], row_number, check=False)
        Zt[-1] = spec.numbers(table, spec.target, row_number, check=False)
        yield table, row_number, Zt


def stream_feature_stats(
    source: TableSource,
    spec: TableSpec,
    *,
    drop_missing: bool = False,
    holdout: Holdout | None = None,
    counts: RowCounts | None = None,
    read_rows: int = READ_ROWS,
) -> FeatureStats:
    """Each encoded feature's mean and standard deviation over a streamed table, in one float64 pass (batches merged
    by `regularization.Moments`). Pass `holdout=Holdout(f, seed)` for the training rows' statistics only.

    Example:
        >>> import tempfile, pathlib
        >>> from linear_nets.data.tables import open_table
        >>> from linear_nets.data.table_spec import fit_spec
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n1,0\\n2,0\\n3,0\\n4,0\\n")
        >>> source = open_table(path)
        >>> stats = stream_feature_stats(source, fit_spec(source, "y"))
        >>> stats.mean.tolist(), round(stats.std.item(), 6), stats.count
        ([2.5], 1.118034, 4)
    """
    moments = Moments()
    selected = _selected_rows(source, spec, None, drop_missing, holdout, counts, read_rows)
    for X, _ in _read_ahead(spec.encode_selected(t, number, torch.float64, contiguous=False) for t, number in selected):
        moments.add(X)  # X column-major as it was filled: no copy for a sum
    check_rows_left(moments.n, source.name, "compute statistics on")
    return FeatureStats(moments.mean, (moments.m2 / moments.n).sqrt(), moments.n)
