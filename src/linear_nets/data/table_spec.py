"""The training schema of a table (`TableSpec`, from `fit_spec`): how each column becomes numbers, at training time
and later. A numeric feature is one float column; a categorical one is one-hot encoded over the categories seen in
training, sorted (numerically when all are integers), and under `coding="treatment"` the first, the reference, gets
no column (as R and statsmodels code it); the target is a float, or the index of its label in the sorted classes.
An unseen category, or a missing value (empty cell, null, NaN, ±inf) without `drop_missing`, is an error naming the
column and the 1-based row.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import Tensor

from linear_nets.errors import ConfigError, DataError

if TYPE_CHECKING:
    from linear_nets.data.tables import TableSource

Task = Literal["regression", "classification"]
TASKS = ("regression", "classification")
SPEC_VERSION = 1
CODINGS = ("onehot", "treatment")
NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
MISSING_HINT = "fill it in, or pass drop_missing to leave out rows with missing values"  # field drop_missing


def _names(names: Iterable[str], limit: int = 20) -> str:
    """'a', 'b', 'c' (at most `limit` of them, then how many in all)."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def _check_unique(names: list[str], where: str) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataError(f"{where} has duplicate column names {_names(duplicates)}: rename them so each is unique")


def _is_number(t: pa.DataType) -> bool:
    kinds = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal, pa.types.is_null)
    return any(is_kind(t) for is_kind in kinds)


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_label(t: pa.DataType) -> bool:
    """Categories and class labels: text, integers or booleans (compared as text)."""
    return _is_text(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t)


def _sorted_labels(values: set[str], integer: bool) -> tuple[tuple[str, ...], bool]:
    """Sort labels numerically when `integer` and they all parse as integers, else as text; say which."""
    if integer:
        with contextlib.suppress(ValueError):
            return tuple(sorted(values, key=int)), True
    return tuple(sorted(values)), False


def _is_integer_name(type_name: str) -> bool:
    return type_name.startswith(("int", "uint"))


def _as_table(data: pa.Table | pa.RecordBatch) -> pa.Table:
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return data
    raise ConfigError(f"expected a pyarrow Table or RecordBatch, got {type(data).__name__}")


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _first_true(mask: np.ndarray) -> int:
    """The index of the first True in `mask` (which holds one)."""
    return int(np.argmax(mask))


@dataclass(frozen=True)
class TableSpec:
    """How a table becomes tensors: `features` (in order), `categories` (categorical column -> sorted categories),
    `classes` (sorted labels, classification only; `class_type` "integer" or "string"), `column_types` (in the
    training file), `ignored` (its other columns, skipped at prediction time). Build one with `fit_spec`; save it
    with `to_dict()`, load it with `TableSpec.from_dict`."""

    task: Task
    target: str
    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    class_type: str | None = None
    column_types: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    coding: str = "onehot"

    def levels(self, column: str) -> tuple[str, ...]:
        """The categories of `column` that get a column of X (all but the reference under treatment coding)."""
        return self.categories[column][1:] if self.coding == "treatment" else self.categories[column]

    @property
    def feature_names(self) -> list[str]:
        """The encoded columns of X, in order: a numeric feature's name, or `name=category` per category."""
        names: list[str] = []
        for column in self.features:
            if column in self.categories:
                names += [f"{column}={category}" for category in self.levels(column)]
            else:
                names.append(column)
        return names

    @property
    def num_features(self) -> int:
        """d, the number of columns of X."""
        return sum(len(self.levels(c)) if c in self.categories else 1 for c in self.features)

    @property
    def label_columns(self) -> list[str]:
        """The columns whose values are compared as text: the categorical features, and a classification target."""
        return [*self.categories, *([self.target] if self.task == "classification" else [])]

    # ----------------------------------------------------------------------------------------- saving, loading

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples as lists); `feature_names` is there for readers, not needed."""
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        fields["categories"] = {c: list(v) for c, v in self.categories.items()}
        return {"version": SPEC_VERSION, **fields, "feature_names": self.feature_names}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableSpec:
        """Inverse of `to_dict`. Raises DataError when a field is missing or malformed.

        Example:
            >>> spec = TableSpec("regression", "price", ("area", "colour"), {"colour": ("blue", "red")})
            >>> TableSpec.from_dict(spec.to_dict()) == spec
            True
        """
        try:
            if d.get("version", SPEC_VERSION) != SPEC_VERSION:
                raise ValueError(f"version {d['version']} (this package reads {SPEC_VERSION})")
            spec = cls(
                task=d["task"],
                target=str(d["target"]),
                features=tuple(map(str, d["features"])),
                categories={str(c): tuple(map(str, v)) for c, v in d["categories"].items()},
                classes=None if d["classes"] is None else tuple(map(str, d["classes"])),
                class_type=d["class_type"],
                column_types={str(c): str(t) for c, t in d["column_types"].items()},
                ignored=tuple(map(str, d["ignored"])),
                coding=str(d.get("coding", "onehot")),  # runs written before treatment coding existed
            )
            if spec.task not in TASKS or (spec.task == "classification") != (spec.classes is not None):
                raise ValueError(f"task {spec.task!r} with classes {spec.classes!r}")
            if spec.coding not in CODINGS:
                raise ValueError(f"coding {spec.coding!r}")
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            problem = f"{type(e).__name__}: {e}"
            raise DataError(f"training schema is malformed ({problem}): retrain to write a new one") from e
        return spec

    def with_vocabulary(self, batches: Iterable[pa.RecordBatch], *, drop_missing: bool = False) -> TableSpec:
        """This spec with the categories and class labels seen in `batches` (less rows with a missing value under
        `drop_missing`), sorted. Raises DataError when classification finds fewer than two classes."""
        seen: dict[str, set[str]] = {c: set() for c in self.label_columns}
        for batch in batches:
            if drop_missing:
                batch = batch.filter(pa.array(~self.missing_rows(batch)))
            for c, values in seen.items():
                unique = pc.unique(_as_text(pa.chunked_array([batch.column(c)])))
                values.update(v for v in unique.to_pylist() if v is not None)
        categories = {c: _sorted_labels(seen[c], _is_integer_name(self.column_types[c]))[0] for c in self.categories}
        classes, class_type = self.classes, self.class_type
        if classes is not None:
            classes, integer = _sorted_labels(seen[self.target], self.class_type == "integer")
            class_type = "integer" if integer else "string"
            if len(classes) < 2:
                found = f"only the class {classes[0]!r}" if classes else "no labels"
                raise DataError(
                    f"target '{self.target}' has {found}: classification needs at least two classes; "
                    "check which column is the target, or train on rows with more than one class"
                )
        return replace(self, categories=categories, classes=classes, class_type=class_type)

    # ----------------------------------------------------------------------------------------------- checking

    def read_types(self) -> dict[str, pa.DataType]:
        """The types to parse a CSV's used columns as: numbers as float64 (booleans as booleans: true/false are 1/0,
        as in Parquet), categories and labels as text."""
        types = {c: pa.bool_() if self.column_types.get(c) == "bool" else pa.float64() for c in self.features}
        types.update((c, pa.string()) for c in self.categories)
        types[self.target] = pa.float64() if self.task == "regression" else pa.string()
        return types

    def check_columns(self, schema: pa.Schema, *, prediction: bool = False, where: str = "the table") -> None:
        """Raise DataError unless `schema` has every feature (and the target, unless `prediction`) with a usable type;
        with `prediction`, a column the training file did not have is refused too (the target may be present)."""
        names = schema.names
        _check_unique(names, where)
        needed = list(self.features) + ([] if prediction else [self.target])
        missing = [c for c in needed if c not in names]
        if missing:
            raise DataError(
                f"{where} has no column {_names(missing)} (its columns: {_names(names)}): the training "
                f"schema needs {_names(needed)}; add the missing ones"
            )
        if prediction:
            known = {*self.features, self.target, *self.ignored}
            extra = [c for c in names if c not in known]
            if extra:
                raise DataError(
                    f"{where} has column {_names(extra)} that the training table did not have: "
                    f"remove it (the model uses {_names(self.features)})"
                )
        for c in [c for c in [*self.features, self.target] if c in names]:
            t = schema.field(c).type
            label = c in self.label_columns
            if not (_is_label(t) if label else _is_number(t)):
                trained = self.column_types.get(c, "categories" if label else "numbers")
                raise DataError(
                    f"column '{c}' is {t} in {where} but was {trained} in training: give it the training "
                    f"type ({'text or integer labels' if label else 'numbers'})"
                )

    def missing_rows(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Boolean mask of the rows with an empty cell, null, NaN or ±inf in a feature or the target (if present)."""
        table = _as_table(table)
        mask = np.zeros(table.num_rows, dtype=bool)
        for c in [c for c in [*self.features, self.target] if c in table.column_names]:
            if c in self.label_columns:
                mask |= pc.is_null(table.column(c)).to_numpy(zero_copy_only=False)
            else:
                mask |= ~np.isfinite(_numbers(table.column(c), f"column '{c}'"))
        return mask

    # ----------------------------------------------------------------------------------------------- encoding

    def encode(
        self,
        table: pa.Table | pa.RecordBatch,
        *,
        drop_missing: bool = False,
        first_row: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, Tensor]:
        """X `[n, d]` of `dtype` and y `[n]` (`dtype`, or int64 class indices) of every row. `drop_missing` leaves out
        rows with a missing value; `first_row` numbers the rows in messages. Raises DataError, naming the column and
        the row, for a column missing or mistyped, a missing value, or a category or label not seen in training.

        Example:
            >>> table = pa.table({"size": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"], "price": [10, 20, 35]})
            >>> spec = fit_spec(table, "price", categorical=["colour"])
            >>> X, y = spec.encode(table)
            >>> spec.feature_names
            ['size', 'colour=blue', 'colour=red']
            >>> X.tolist(), y.tolist()
            ([[1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]], [10.0, 20.0, 35.0])
        """
        table, _, row_number = self.select_rows(table, drop_missing=drop_missing, first_row=first_row)
        return self.encode_selected(table, row_number, dtype)

    def encode_features(
        self, table: pa.Table | pa.RecordBatch, *, first_row: int = 1, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """X for prediction: like `encode`, but the target may be absent and a column training did not have is an error.

        Example:
            >>> spec = fit_spec(pa.table({"x": [1, 2], "colour": ["red", "blue"], "y": [0.5, 1.5]}), "y",
            ...                 categorical=["colour"])
            >>> spec.encode_features(pa.table({"x": [3], "colour": ["blue"]})).tolist()
            [[3.0, 1.0, 0.0]]
            >>> spec.encode_features(pa.table({"x": [3], "colour": ["green"]}))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            linear_nets.errors.DataError: column 'colour' has the category 'green' at row 1, which was not seen in ...
        """
        table = _as_table(table)
        self.check_columns(table.schema, prediction=True)
        return self._features(table, lambda i: first_row + i, dtype)

    def encode_selected(
        self, table: pa.Table, row_number, dtype: torch.dtype = torch.float32, contiguous: bool = True
    ) -> tuple[Tensor, Tensor]:
        """X and y of a table from `select_rows`; `contiguous=False` leaves X column-major as it was filled."""
        X = self._features(table, row_number, dtype, contiguous)
        if self.task == "classification":
            codes = _codes(table.column(self.target), self.classes, self.target, "label", row_number)
            return X, torch.from_numpy(codes.astype(np.int64))
        return X, torch.tensor(self.numbers(table, self.target, row_number), dtype=dtype)  # copy: Arrow's is read-only

    def select_rows(
        self,
        table: pa.Table | pa.RecordBatch,
        *,
        drop_missing: bool = False,
        first_row: int = 1,
        rows: np.ndarray | None = None,
    ) -> tuple[pa.Table, np.ndarray, Callable[[int], int]]:
        """The rows to encode (with `drop_missing`, those with no missing value), their offsets from `first_row`
        (given as `rows`, or 0, 1, 2, ...) and `row_number(i)`: row i's 1-based number in the file, for messages."""
        table = _as_table(table)
        self.check_columns(table.schema)
        rows = np.arange(table.num_rows) if rows is None else np.asarray(rows)
        if drop_missing:
            keep = ~self.missing_rows(table)
            if not keep.all():
                table, rows = table.filter(pa.array(keep)), rows[keep]

        def row_number(i: int) -> int:
            return first_row + int(rows[i])

        return table, rows, row_number

    def write_features(self, table: pa.Table, out: np.ndarray, row_number, *, check: bool = True) -> None:
        """Write Xᵀ into `out` (`[d, n]`, any float dtype and strides); NaN and ±inf refused only with `check`."""
        j = 0
        for c in self.features:
            if c in self.categories:
                codes = _codes(table.column(c), self.categories[c], c, "category", row_number)
                width = len(self.levels(c))
                block = out[j : j + width]
                block[:] = 0  # `out` may be a reused buffer
                if self.coding == "treatment":  # the reference category (code 0) is all zeros
                    rows = np.flatnonzero(codes)
                    block[codes[rows] - 1, rows] = 1
                else:
                    block[codes, np.arange(len(codes))] = 1
                j += width
            else:
                out[j] = self.numbers(table, c, row_number, check=check)
                j += 1

    def numbers(self, table: pa.Table, name: str, row_number, *, check: bool = True) -> np.ndarray:
        """A feature or regression target as read-only floats; NaN, ±inf (if `check`), integers ≥ 2^53 refused."""
        what, column = f"target '{name}'" if name == self.target else f"column '{name}'", table.column(name)
        values = _numbers(column, what, row_number)
        if check and not np.isfinite(values).all():
            i = _first_true(~np.isfinite(values))
            value = "a missing value (empty cell or null)" if not column[i].is_valid else f"the value {values[i]}"
            raise DataError(f"{what} has {value} at row {row_number(i)}: {MISSING_HINT}", "drop_missing")
        if _is_integer_name(self.column_types.get(name, "")) and pa.types.is_floating(column.type):
            large = np.abs(values) >= EXACT_INTEGER  # NaN compares False: left to the finiteness check
            if large.any():
                i = _first_true(large)
                raise DataError(f"{what} has the integer {values[i]:.0f} at row {row_number(i)}, at or beyond 2^53 = "
                                f"{EXACT_INTEGER}: float64 cannot hold every integer there, so the file's value may "
                                "already be rounded; leave the column out (an id?) or scale it")  # fmt: skip
        return values

    def _features(self, table: pa.Table, row_number, dtype: torch.dtype, contiguous: bool = True) -> Tensor:
        if dtype not in NUMPY_DTYPES:
            raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        # Filled column by column, so laid out column-major (Fortran order): contiguous writes, 4x faster.
        X = np.zeros((self.num_features, table.num_rows), dtype=NUMPY_DTYPES[dtype]).T
        self.write_features(table, X.T, row_number)
        X = torch.from_numpy(X)
        return X.contiguous() if contiguous else X


EXACT_INTEGER = 2**53
"""The largest integer magnitude every float64 holds exactly (and so every one below it)."""


def _numbers(column: pa.ChunkedArray, what: str = "a column", row_number: Any = None) -> np.ndarray:
    """A numeric column as floats (zero-copy for float columns without nulls), nulls as NaN; DataError for an integer
    beyond ±2⁵³, which float64 would round."""
    if not pa.types.is_floating(column.type) or pa.types.is_float16(column.type):
        try:
            column = pc.cast(column, pa.float64())
        except pa.ArrowInvalid:  # pyarrow's safe cast refuses exactly these integers
            if not pa.types.is_integer(column.type):
                raise
            values = column.to_numpy(zero_copy_only=False)
            i = _first_true(np.abs(values.astype(np.float64)) > EXACT_INTEGER)
            where = f" at row {row_number(i)}" if row_number is not None else ""
            raise DataError(f"{what} has the integer {values[i]}{where}, beyond 2^53 = {EXACT_INTEGER}: float64 cannot "
                            "hold it exactly; leave the column out (an id?) or scale it") from None  # fmt: skip
    return column.to_numpy()


def _codes(column: pa.ChunkedArray, known: Sequence[str], name: str, kind: str, row_number) -> np.ndarray:
    """Index of each value in `known` (categories or class labels); missing or unknown values raise DataError."""
    texts = _as_text(column)
    missing = pc.is_null(texts).to_numpy(zero_copy_only=False)
    what = f"target '{name}'" if kind == "label" else f"column '{name}'"
    if missing.any():
        i = _first_true(missing)
        raise DataError(f"{what} has a missing value (empty cell or null) at row {row_number(i)}: {MISSING_HINT}",
                        "drop_missing")  # fmt: skip
    codes = pc.index_in(texts, value_set=pa.array(known, pa.string()))
    if codes.null_count:
        i = _first_true(pc.is_null(codes).to_numpy(zero_copy_only=False))
        plural = "categories" if kind == "category" else "classes"
        raise DataError(
            f"{what} has the {kind} {texts[i].as_py()!r} at row {row_number(i)}, which was not seen in "
            f"training ({plural}: {_names(known)}): map it to one of those, or retrain on rows that "
            "include it"
        )
    return codes.to_numpy()


# ------------------------------------------------------------------------------------------------------- fitting


def fit_spec(
    data: pa.Table | pa.RecordBatch | TableSource,
    target: str,
    *,
    task: Task = "regression",
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    drop_missing: bool = False,
    coding: str = "onehot",
) -> TableSpec:
    """The training schema of the training rows (a pyarrow Table/RecordBatch, or a source from `open_table`, streamed
    in one pass over the label columns). `task` is "regression" or "classification"; `features` the input columns
    (default every column but the target and a pandas index); `categorical` the features to encode (text columns
    must be) by `coding`, "onehot" or "treatment"; `drop_missing` ignores rows with a missing value. Raises
    ConfigError for inconsistent arguments, DataError for a column missing or of the wrong type, or a single class.

    Example:
        >>> species = ["setosa", "versicolor", "virginica", "setosa"]
        >>> table = pa.table({"petal": [1.4, 4.7, 6.0, 1.3], "species": species})
        >>> spec = fit_spec(table, "species", task="classification")
        >>> spec.classes, spec.encode(table)[1].tolist()
        (('setosa', 'versicolor', 'virginica'), [0, 1, 2, 0])
    """
    table = _as_table(data) if isinstance(data, pa.Table | pa.RecordBatch) else None
    schema, where = (table.schema, "the table") if table is not None else (data.schema, data.name)
    layout = layout_spec(schema, target, task=task, features=features, categorical=categorical, where=where,
                         coding=coding)  # fmt: skip
    columns = [*layout.features, target] if drop_missing else layout.label_columns
    if not columns:
        return layout
    if table is not None:
        return layout.with_vocabulary(table.select(columns).to_batches(), drop_missing=drop_missing)
    types = layout.read_types()
    batches = (batch for part in data.parts() for batch in part.batches(columns, types, 1 << 16))
    return layout.with_vocabulary(batches, drop_missing=drop_missing)


def layout_spec(
    schema: pa.Schema,
    target: str,
    *,
    task: Task = "regression",
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    where: str = "the table",
    coding: str = "onehot",
) -> TableSpec:
    """`fit_spec`'s checks and schema before any row is read: categories and classes empty (`with_vocabulary`)."""
    if task not in TASKS:
        raise ConfigError(f"task must be 'regression' or 'classification', got {task!r}")
    if coding not in CODINGS:
        raise ConfigError(f"coding must be one of {', '.join(CODINGS)}, got {coding!r}")
    names = schema.names
    _check_unique(names, where)
    type_of = {name: schema.field(name).type for name in names}
    features = list(features) if features is not None else None
    categorical = list(categorical)
    for name, given in (("features", features or []), ("categorical", categorical)):
        twice = sorted({n for n in given if given.count(n) > 1})
        if twice:
            raise ConfigError(f"{name} names {_names(twice)} more than once: name each column once", name)
    if features is not None and target in features:
        raise ConfigError(f"features includes the target '{target}': a column cannot predict itself; leave it out",
                          "features")  # fmt: skip
    # Every fault of the columns at once, in one line: a table with two text columns is fixed in one go.
    problems = []
    if target not in names:
        problems.append(f"target column '{target}' is not in {where} (its columns: {_names(names)}): pass one of "
                        "them as the target")  # fmt: skip
    if features is None:  # every other column, but a pandas index written to Parquet is not data
        features = [n for n in names if n != target and not n.startswith("__index_level_")]
    missing = [c for c in features if c not in names]
    if missing:
        problems.append(f"feature column {_names(missing)} is not in {where} (its columns: {_names(names)}): fix "
                        "features")  # fmt: skip
    if not features:
        raise ConfigError(f"no feature columns: {where} has only the target '{target}'; give at least one more column")
    not_features = [c for c in categorical if c not in features]
    if not_features:
        raise ConfigError(
            f"categorical names {_names(not_features)}, which is not a feature column "
            f"(features: {_names(features)}): name feature columns only",
            "categorical",
        )
    present = [c for c in features if c in names]
    not_labels = [c for c in present if c in categorical and not _is_label(type_of[c])]
    if not_labels:
        types = ", ".join(f"'{c}' {type_of[c]}" for c in not_labels)
        problems.append(f"column {_names(not_labels)} has a type that cannot hold categories ({types}): leave it out "
                        "of categorical (it is used as a number) or convert it to text")  # fmt: skip
    text = [c for c in present if c not in categorical and _is_text(type_of[c])]
    if text:
        it = "it" if len(text) == 1 else "them"
        problems.append(f"column {_names(text)} holds text (type {type_of[text[0]]}): pass categorical "
                        f"{','.join(text)} to one-hot encode {it}, leave {it} out of features, or if a text such "
                        "as NA marks missing numbers pass na_values NA")  # fmt: skip
    other = [c for c in present if c not in categorical and not _is_text(type_of[c]) and not _is_number(type_of[c])]
    if other:
        types = ", ".join(f"'{c}' {type_of[c]}" for c in other)
        problems.append(f"column {_names(other)} has a type that is not a number ({types}): leave it out of "
                        "features or convert it to numbers")  # fmt: skip
    t = type_of.get(target)
    if t is not None and task == "regression" and not _is_number(t):
        problems.append(f"target '{target}' is not numeric (type {t}): regression needs a number to predict; "
                        "for class labels train a classifier (softmax)")  # fmt: skip
    if t is not None and task == "classification" and not _is_label(t):
        problems.append(f"target '{target}' has type {t}; classification needs integer or text class labels: "
                        "convert it, or train a regression (linreg) for a numeric target")  # fmt: skip
    if problems:
        raise DataError("; and ".join(problems), "features", "categorical", "na_values")
    return TableSpec(
        task=task,
        target=target,
        features=tuple(features),
        categories={c: () for c in features if c in categorical},
        classes=() if task == "classification" else None,
        class_type=("integer" if pa.types.is_integer(t) else "string") if task == "classification" else None,
        column_types={c: str(type_of[c]) for c in [*features, target]},
        ignored=tuple(n for n in names if n not in features and n != target),
        coding=coding,
    )
