"""Your own table: open a CSV or Parquet file (`open_table`), read it whole into tensors (`load_table`) or part by
part (a source's `parts()`, for `table_stream`), and split it (`Holdout`). Row numbers in messages are 1-based, in
file order; every read of a CSV uses the training schema's types (`TableSpec.read_types`), so all reads agree.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import torch
from torch import Tensor

from linear_nets.checks import check_memory  # the one home of the machine's memory
from linear_nets.data.table_spec import CODINGS, TableSpec, Task, _check_unique, _is_number, layout_spec
from linear_nets.errors import ConfigError, DataError

CSV_BLOCK_BYTES = 1 << 22  # bytes of text per CSV block, and the sample a CSV's types are inferred from
CSV_READ_OPTIONS = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=True)
# Pre-buffering held a whole 2 GB file in memory (2.1 GB peak against 0.18 GB), and was slower: off.
PARQUET_FORMAT = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))


# ---------------------------------------------------------------------------------------------- opening a table


@dataclass(frozen=True)
class TableInfo:
    """What a table file holds, for a run's config: `format` is csv, csv.gz, parquet or parquet-directory."""

    path: str
    format: str
    columns: list[str]
    types: list[str]
    num_rows: int
    size_bytes: int
    schema_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def schema_sha256(schema: pa.Schema) -> str:
    """SHA-256 of the column names and types as canonical JSON (`[{"name": ..., "type": ...}, ...]`, compact).

    Example:
        >>> schema_sha256(pa.schema([("x", pa.float64())]))[:12]
        '03c232096f84'
    """
    fields = [{"name": f.name, "type": str(f.type)} for f in schema]
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TablePart:
    """A Parquet row group or a whole CSV file, read as record batches (`batches(columns, column_types, batch_rows)`);
    `first_row` is its first row's 0-based index in the file, `num_rows` None for a CSV (unknown until read)."""

    first_row: int
    num_rows: int | None
    batches: Callable[[list[str], dict[str, pa.DataType] | None, int], Iterator[pa.RecordBatch]] = field(repr=False)


class TableSource:
    """An opened table (use `open_table`): `schema`, `info()`, `read(columns, column_types)` (the whole table, or those
    columns, in memory; a CSV's parsed as `column_types` when given) and `parts()` (the pieces to stream, in order)."""

    format: str
    num_rows: int  # a CSV counts them when first asked

    def __init__(self, path: Path, schema: pa.Schema, size_bytes: int) -> None:
        _check_unique(schema.names, path.name)
        self.path, self.name = path, path.name
        self.schema, self.size_bytes = schema, size_bytes

    def info(self) -> TableInfo:
        """What the table holds, for a run's config (counting a CSV's rows reads it once)."""
        types, sha256 = [str(t) for t in self.schema.types], schema_sha256(self.schema)
        return TableInfo(str(self.path), self.format, self.schema.names, types, self.num_rows, self.size_bytes, sha256)

    def estimated_rows(self) -> int:
        """The rows, without reading them (Parquet's metadata counts them; a CSV estimates them)."""
        return self.num_rows

    def _check_not_empty(self, num_rows: int) -> None:
        if num_rows == 0:
            raise DataError(f"{self.name} has columns but no rows: give a table with at least one data row")


class CsvSource(TableSource):
    """A `.csv` or `.csv.gz` file; types inferred from the first 4 MiB block; one part, streamed block by block."""

    def __init__(self, path: Path, na_values: Sequence[str] = ()) -> None:
        self.compression = "gzip" if path.name.lower().endswith(".gz") else None
        self.format = "csv.gz" if self.compression else "csv"
        # Only an empty cell is missing unless told: pyarrow's default nulls "NA" too, Namibia's country code.
        self.null_values = ["", *na_values]
        with _arrow_errors(path, "CSV"):
            inferring = pacsv.ConvertOptions(strings_can_be_null=True, null_values=self.null_values)
            with pacsv.open_csv(self._stream(path), CSV_READ_OPTIONS, convert_options=inferring) as reader:
                first = next(iter(reader), None)  # None: a header and no rows
            reader.schema.names  # noqa: B018  (decoded here: a header in latin-1 is one line, not a traceback)
        rows = 0 if first is None else first.num_rows
        super().__init__(path, reader.schema, path.stat().st_size)
        self._check_not_empty(rows)
        self._first_block_rows, self._num_rows = rows, None

    def _stream(self, path: Path | None = None) -> pa.NativeFile:
        return pa.input_stream(str(path or self.path), compression=self.compression, buffer_size=1 << 20)

    def _convert(self, columns: list[str] | None = None, column_types=None) -> pacsv.ConvertOptions:
        """Every read uses fixed types (the inferred ones unless given): all blocks parse alike, whichever reader."""
        types = {f.name: f.type for f in self.schema if not pa.types.is_null(f.type)}
        types.update(column_types or {})
        if columns is not None:
            types = {n: t for n, t in types.items() if n in columns}
        return pacsv.ConvertOptions(include_columns=columns, strings_can_be_null=True, column_types=types,
                                    null_values=self.null_values)  # fmt: skip

    def read(self, columns: list[str] | None = None, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
        with _arrow_errors(self.path, "CSV", self, column_types):
            convert = self._convert(columns, column_types)
            table = pacsv.read_csv(self._stream(), CSV_READ_OPTIONS, convert_options=convert)
        self._check_not_empty(table.num_rows)
        self._num_rows = table.num_rows
        return table

    def parts(self) -> list[TablePart]:
        return [TablePart(0, self._num_rows, self._read_blocks)]

    def _read_blocks(self, columns, column_types, batch_rows) -> Iterator[pa.RecordBatch]:
        del batch_rows  # a CSV block holds CSV_BLOCK_BYTES of text
        convert = self._convert(columns, column_types)
        with (
            _arrow_errors(self.path, "CSV", self, column_types),
            pacsv.open_csv(self._stream(), CSV_READ_OPTIONS, convert_options=convert) as reader,
        ):
            yield from reader

    def estimated_rows(self) -> int:
        """The (uncompressed) size over the bytes per row of the first block."""
        if self._num_rows is not None:
            return self._num_rows
        size = self.path.stat().st_size
        if self.compression:
            with open(self.path, "rb") as f:
                f.seek(-4, os.SEEK_END)
                size = max(size, int.from_bytes(f.read(4), "little"))  # ISIZE: the size mod 2^32
        # the first block held (about) CSV_BLOCK_BYTES of text, or the whole file: rows in proportion
        return int(size * self._first_block_rows / max(1, min(size, CSV_BLOCK_BYTES))) + 1

    @property
    def num_rows(self) -> int:  # counted by reading the first column, once (a whole read counts them too)
        if self._num_rows is None:
            first = self.schema.names[0]
            self._num_rows = sum(b.num_rows for b in self._read_blocks([first], {first: pa.string()}, 0))
            self._check_not_empty(self._num_rows)
        return self._num_rows


class ParquetSource(TableSource):
    """A `.parquet` file or a directory of them (sorted by path, one schema); one part per row group."""

    def __init__(self, path: Path) -> None:
        self.format = "parquet-directory" if path.is_dir() else "parquet"
        files = _parquet_files(path) if path.is_dir() else [path]
        with _arrow_errors(path, "Parquet"):
            self.dataset = ds.dataset([str(f) for f in files], format=PARQUET_FORMAT)
            fragments = list(self.dataset.get_fragments())
            for fragment, file in zip(fragments, files, strict=True):
                if not fragment.physical_schema.equals(self.dataset.schema):
                    raise DataError(
                        f"{file.name} in {path.name} has columns or types different from {files[0].name}: "
                        "every file of a Parquet directory needs the same schema"
                    )
            self._row_groups = [rg for fragment in fragments for rg in fragment.split_by_row_group()]
        super().__init__(path, self.dataset.schema, sum(f.stat().st_size for f in files))
        self.num_rows = sum(rg.row_groups[0].num_rows for rg in self._row_groups)
        self._check_not_empty(self.num_rows)

    def read(self, columns: list[str] | None = None, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
        del column_types  # Parquet is typed: encoding casts
        with _arrow_errors(self.path, "Parquet"):
            return self.dataset.to_table(columns=columns, use_threads=True)

    def parts(self) -> list[TablePart]:
        parts, first = [], 0
        for rg in self._row_groups:
            n = rg.row_groups[0].num_rows
            if n:
                parts.append(TablePart(first, n, functools.partial(self._read_row_group, rg)))
            first += n
        return parts

    def _read_row_group(self, row_group: ds.Fragment, columns, column_types, batch_rows) -> Iterator[pa.RecordBatch]:
        with _arrow_errors(self.path, "Parquet"):
            yield from row_group.to_batches(columns=columns, batch_size=batch_rows, use_threads=True)


def open_table(path: str | os.PathLike, na_values: Sequence[str] = ()) -> TableSource:
    """Open a `.csv`, `.csv.gz` or `.parquet` file, or a directory of `.parquet` files. In a CSV an empty cell, and
    each text of `na_values`, is a missing value. Raises DataError for a file missing, unreadable, empty or not a table.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "houses.csv"
        >>> _ = path.write_text("area,rooms,price\\n70,3,210.5\\n120,5,380\\n")
        >>> source = open_table(path)
        >>> source.format, source.schema.names, source.num_rows
        ('csv', ['area', 'rooms', 'price'], 2)
    """
    path = Path(path)
    lower = path.name.lower()
    try:
        path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(f"{path} is a loop of symbolic links: point it at the table file") from None
        if path.is_symlink():
            raise DataError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist") from None
        raise DataError(f"{path} does not exist: check the file name") from None
    if path.is_dir():
        return ParquetSource(path)
    if not path.is_file():  # a FIFO or a device: the format check would consume bytes the reader then never sees
        raise DataError(f"{path} is not a regular file (a pipe, device or socket): write the table to a file first")
    if not lower.endswith((".csv", ".csv.gz", ".parquet")):
        raise DataError(
            f"{path.name} is not a table this tool reads: give a .csv, .csv.gz or .parquet file, "
            "or a directory of .parquet files"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}: check its permissions") from e
    if not head:
        raise DataError(f"{path.name} is empty (0 bytes): give a table with a header and at least one row")
    if lower.endswith(".parquet"):
        if head[:4] != b"PAR1":
            raise DataError(
                f"{path.name} is not a Parquet file (it does not start with PAR1): "
                "convert it, or rename it to .csv if it is CSV"
            )
        return ParquetSource(path)
    if lower.endswith(".gz") and head[:2] != b"\x1f\x8b":
        raise DataError(f"{path.name} is not gzip-compressed: rename it to .csv if it is plain CSV")
    if head[:4] == b"PAR1":
        raise DataError(f"{path.name} is a Parquet file, not CSV: rename it to .parquet")
    if not lower.endswith(".gz") and b"\x00" in head:
        raise DataError(f"{path.name} is not a text (CSV) file: it contains binary data; give a CSV or Parquet file")
    return CsvSource(path, na_values)


def read_table_info(path: str | os.PathLike) -> TableInfo:
    """`open_table(path).info()`: columns, types, rows, bytes and schema SHA-256 of a table file.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n1,2\\n3,4\\n")
        >>> info = read_table_info(path)
        >>> info.columns, info.types, info.num_rows, info.size_bytes
        (['x', 'y'], ['int64', 'int64'], 2, 12)
    """
    return open_table(path).info()


def file_identity(path: str | os.PathLike) -> dict[str, str]:
    """A table's absolute path and the SHA-256 of its bytes (of a directory: each Parquet file's name and bytes), for
    a run to find its rows again. A file over `WHOLE_HASH_BYTES` is hashed by its size and 256 samples of 64 KiB.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n1,2\\n")
        >>> file_identity(path)["sha256"][:12]
        '81bf9fa83c6f'
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = _parquet_files(path) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        try:
            with open(file, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size <= WHOLE_HASH_BYTES:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                    continue
                # Sampled: hashing all 3.3 GB of a 10^7-row table took 2.4 s of a 4.5 s streamed fit; an edit that
                # keeps the size and misses every sample is what this gives up.
                digest.update(size.to_bytes(8, "little"))
                for k in range(256):
                    f.seek((size - SAMPLE_BYTES) * k // 255)
                    digest.update(f.read(SAMPLE_BYTES))
        except OSError as e:
            raise DataError(f"cannot read {file}: {e.strerror}") from e
    return {"path": str(path.absolute()), "sha256": digest.hexdigest()}


WHOLE_HASH_BYTES = 256 << 20  # files up to this size are hashed whole
SAMPLE_BYTES = 64 << 10


def recorded_file(given: str, recorded: Any, what: str = "training table") -> str:
    """The file a run was trained with: `given` if it is there, else the path `file_identity` recorded; a DataError
    when its SHA-256 differs from the recorded one. `what` names the file in messages.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n1,2\\n")
        >>> recorded_file(str(path), file_identity(path)) == str(path)
        True
    """
    fix = "pass --data FILE to score a table"
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        raise DataError(f"the run did not record the identity of its {what} (an older run): {fix}")
    path = given if Path(given).exists() else str(recorded.get("path", given))
    if not Path(path).exists():
        raise DataError(f"the run's {what} {given} is not there (nor {recorded.get('path')}): {fix}")
    if file_identity(path)["sha256"] != recorded["sha256"]:
        raise DataError(f"{path} has changed since the run was trained (its SHA-256 differs): its held-out rows "
                        f"cannot be found again; {fix}")  # fmt: skip
    return path


def _parquet_files(directory: Path) -> list[Path]:
    """The directory's Parquet files, sorted, less those whose path has a part starting with . or _ (hidden)."""
    parquet = (p for p in directory.rglob("*") if p.is_file() and p.name.lower().endswith(".parquet"))
    files = sorted(p for p in parquet if not any(s.startswith((".", "_")) for s in p.relative_to(directory).parts))
    if not files:
        fix = "give a CSV or Parquet file or such a directory"
        raise DataError(f"directory {directory} holds no .parquet files: {fix}")
    return files


@contextlib.contextmanager
def _arrow_errors(
    path: Path, kind: str, source: CsvSource | None = None, column_types: dict[str, pa.DataType] | None = None
) -> Iterator[None]:
    """Turn pyarrow's exceptions into one-line `DataError`s; locate a CSV value that does not parse."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name} is not UTF-8 text (byte {exc.object[exc.start]:#x} in a column name): save it "
                        "as UTF-8") from None  # fmt: skip
    except (pa.ArrowException, OSError) as exc:
        message = " ".join(str(exc).split())
        if "straddl" in message or ("Empty CSV file" in message and path.stat().st_size > CSV_BLOCK_BYTES):
            raise DataError(f"{path.name} has a header or a row longer than {CSV_BLOCK_BYTES >> 20} MiB, more than "
                            "a CSV block of this reader holds: check the file (one line, no newlines?)") from None
        if isinstance(exc, PermissionError):
            raise DataError(f"cannot read {path}: permission denied: check its permissions") from exc
        if "Empty CSV file" in message:
            raise DataError(f"{path.name} is empty: give a table with a header and at least one row") from exc
        if source is not None and "conversion error" in message:
            raise _bad_csv_value(source, message, column_types) from exc
        raise DataError(f"cannot read {path.name} as {kind}: {message}: check the file") from exc


def _bad_csv_value(source: CsvSource, message: str, column_types) -> DataError:
    """Find the first value of the column named in Arrow's conversion error that does not parse, with its row."""
    unparsed = DataError(f"cannot read {source.name}: {message}: fix that value")  # when it cannot be found
    try:
        index = int(message.split("column #", 1)[1].split(":", 1)[0])
        name = source.schema.names[index]
    except (IndexError, ValueError):
        return unparsed
    wanted = (column_types or {}).get(name, source.schema.field(name).type)

    def fails(texts: pa.Array, stop: int) -> bool:
        try:
            pc.cast(texts.slice(0, stop), wanted)
            return False
        except pa.ArrowInvalid:
            return True

    row = 0
    for batch in source._read_blocks([name], {name: pa.string()}, 0):
        texts = batch.column(0)
        # Bisect on the prefixes: once one fails, every longer one does, and the shortest ends with the bad value.
        bad = bisect.bisect_left(range(1, len(texts) + 1), True, key=functools.partial(fails, texts))
        if bad < len(texts):
            return DataError(
                f"column '{name}' of {source.name} has the value {texts[bad].as_py()!r} at row {row + bad + 1}, "
                f"which is not a {'number' if _is_number(wanted) else wanted}: fix it, pass na_values "
                f"{texts[bad].as_py()} if it marks a missing value, or if '{name}' holds categories pass "
                f"categorical {name}",
                "na_values",
                "categorical",
            )
        row += len(texts)
    return unparsed


# ------------------------------------------------------------------------------------------ in memory, and splits


def check_table_options(test_fraction: float, categorical_coding: str = "auto") -> None:
    """Raise `ConfigError`, naming the field, unless 0 <= test_fraction < 1 and the coding is "auto" or a `CODINGS`.

    Example:
        >>> check_table_options(0.2, "onehot")  # fine: nothing to say
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float) or not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction must be a number >= 0 and < 1, got {test_fraction}", "test_fraction")
    if categorical_coding not in ("auto", *CODINGS):
        raise ConfigError(f"categorical_coding must be one of auto, {', '.join(CODINGS)}, got {categorical_coding}",
                          "categorical_coding")  # fmt: skip


@dataclass(frozen=True)
class Holdout:
    """The seeded train/test split, row by row: row i (0-based, in the file) is a test row when hash(seed, i) / 2⁶⁴ <
    test_fraction (SplitMix64), so the same rows are held out in memory and streamed, whatever the batching. Not
    stratified. `part` says which side `keep` keeps.

    Example:
        >>> train, test = Holdout(0.25, seed=1), Holdout(0.25, seed=1, part="test")
        >>> rows = np.arange(1000)
        >>> bool((train.keep(rows) ^ test.keep(rows)).all()), int(test.keep(rows).sum())
        (True, 211)
    """

    test_fraction: float
    seed: int = 0
    part: Literal["train", "test"] = "train"

    def keep(self, rows: np.ndarray) -> np.ndarray:
        """Mask of the rows numbered `rows` (0-based, in the file) that belong to `part`."""
        z = np.asarray(rows, dtype=np.uint64) + _splitmix64(np.array([self.seed], np.uint64))
        test = _splitmix64(z) < np.uint64(min(int(self.test_fraction * 2.0**64), 2**64 - 1))
        return test if self.part == "test" else ~test


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a bijective mix of 64-bit integers (arithmetic wraps modulo 2⁶⁴)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def check_rows_left(rows: int, name: str, what: str = "fit") -> None:
    """Raise `DataError` when no row of the table `name` is left to `what` (all held out, or dropped)."""
    if rows == 0:
        raise DataError(f"no rows of {name} are left to {what} (all held out or missing values)")


@dataclass(frozen=True)
class LoadedTable:
    """`load_table`'s result. Unpacks as `X, y, spec, info = load_table(...)`; `rows_dropped` counts the rows left
    out for missing values (`drop_missing=True`); `rows` holds each row's 0-based number in the file (with gaps)."""

    X: Tensor
    y: Tensor
    spec: TableSpec
    info: TableInfo
    rows_dropped: int
    rows: np.ndarray

    def __iter__(self) -> Iterator[Any]:
        return iter((self.X, self.y, self.spec, self.info))

    def split(self, test_fraction: float, seed: int) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """The (X, y) training and test rows of `Holdout(test_fraction, seed)`; DataError when no training row is left.

        Example:
            >>> import tempfile, pathlib
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
            >>> _ = path.write_text("x,y\\n" + "".join(f"{i},{2 * i}\\n" for i in range(10)))
            >>> train, test = load_table(path, "y").split(0.3, seed=0)
            >>> test[0][:, 0].tolist(), len(train[1])
            ([1.0, 5.0, 7.0], 7)
        """
        test = torch.from_numpy(Holdout(test_fraction, seed, "test").keep(self.rows))
        check_rows_left(int((~test).sum()), Path(self.info.path).name)
        return (self.X[~test], self.y[~test]), (self.X[test], self.y[test])


def load_table(
    path: str | os.PathLike,
    target: str | None = None,
    *,
    task: Task = "regression",
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    drop_missing: bool = False,
    spec: TableSpec | None = None,
    dtype: torch.dtype = torch.float32,
    coding: str = "onehot",
    na_values: Sequence[str] = (),
) -> LoadedTable:
    """Read a whole table into tensors, with the training schema fitted on every row (or `spec`, to read another file
    as training did). `target`, `task`, `features`, `categorical`, `coding` as for `fit_spec`; `drop_missing` leaves
    out rows with a missing value instead of raising. Raises as `open_table`, `fit_spec` and `TableSpec.encode` do.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "houses.csv"
        >>> _ = path.write_text("area,colour,price\\n70,red,210\\n120,blue,380\\n95,,290\\n")
        >>> loaded = load_table(path, "price", categorical=["colour"], drop_missing=True)
        >>> X, y, spec, info = loaded
        >>> X.tolist(), y.tolist(), loaded.rows_dropped, info.num_rows
        ([[70.0, 0.0, 1.0], [120.0, 1.0, 0.0]], [210.0, 380.0], 1, 3)
    """
    source = open_table(path, na_values)
    if spec is None:
        if target is None:
            raise ConfigError("no column to predict: give target (its name)", "target")
        layout = layout_spec(source.schema, target, task=task, features=features, categorical=categorical,
                             where=source.name, coding=coding)  # fmt: skip
    else:
        if target is not None and target != spec.target:
            raise ConfigError(f"target '{target}' differs from the training schema's target '{spec.target}'")
        spec.check_columns(source.schema, where=source.name)
        layout = spec
    columns = [*layout.features, layout.target]
    rows = source.estimated_rows()
    check_table_memory(f"reading {source.name} ({len(columns)} columns of about {rows:,} rows, 8 bytes each)",
                       8 * len(columns) * rows)
    table = source.read(columns, layout.read_types())
    if spec is None:
        spec = layout.with_vocabulary(table.to_batches(), drop_missing=drop_missing)
    check_table_memory(f"encoding {source.name} ({table.num_rows:,} rows x {spec.num_features:,} features, "
                       f"categories {spec.coding}, {dtype.itemsize} bytes each)",
                       2 * dtype.itemsize * table.num_rows * spec.num_features)  # fmt: skip
    selected, kept, row_number = spec.select_rows(table, drop_missing=drop_missing)
    X, y = spec.encode_selected(selected, row_number, dtype)
    if len(kept) == 0:
        raise DataError(
            f"every row of {source.name} has a missing value in a used column: nothing is left; "
            "fill them in or choose other features",
            "features",
        )
    return LoadedTable(X, y, spec, source.info(), table.num_rows - len(kept), kept)


def check_table_memory(what: str, need: int, streamed: bool = False) -> None:
    """Raise DataError, with the figures, when `need` bytes are more than this machine has available.

    Example:
        >>> check_table_memory("a small table", 1000)  # fits: nothing to say
    """
    try:
        check_memory(what, need)
    except ConfigError as exc:
        way = "" if streamed else "stream, "  # (not "features": the figures say "2,000 features")
        raise DataError(f"{exc}: use {way}fewer feature columns, or categorical columns with fewer levels",
                        *([] if streamed else ["stream"])) from None


def load_features(
    path: str | os.PathLike, spec: TableSpec, *, dtype: torch.dtype = torch.float32, na_values: Sequence[str] = ()
) -> Tensor:
    """X `[n, d]` of every row of a table to predict on, encoded with `spec` (the target column may be there or not).
    Raises DataError as `open_table` and `TableSpec.encode_features` do.

    Example:
        >>> import tempfile, pathlib
        >>> from linear_nets.data.table_spec import fit_spec
        >>> spec = fit_spec(pa.table({"area": [70.0, 120.0], "price": [210.0, 380.0]}), "price")
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "new.csv"
        >>> _ = path.write_text("area\\n95\\n")
        >>> load_features(path, spec).tolist()
        [[95.0]]
    """
    source = open_table(path, na_values)
    spec.check_columns(source.schema, prediction=True, where=source.name)
    rows, itemsize = source.estimated_rows(), dtype.itemsize
    check_table_memory(f"predicting {source.name} (about {rows:,} rows x {spec.num_features:,} features)",
                       (8 * len(spec.features) + 2 * itemsize * spec.num_features) * rows)
    table = source.read(list(spec.features), spec.read_types())
    return spec.encode_features(table, dtype=dtype)
