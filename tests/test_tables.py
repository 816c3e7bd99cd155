"""Tables (CSV, CSV.gz, Parquet, Parquet directories): reading, the training schema, encoding, splits, streaming,
the streamed closed form against the in-memory one and scikit-learn, and every error a user can cause."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from linear_nets.closed_form import RankDeficientWarning, least_squares
from linear_nets.data.table_spec import TableSpec, fit_spec
from linear_nets.data.table_stream import (
    FeatureStats,
    RowCounts,
    stream_batches,
    stream_feature_stats,
    stream_least_squares,
)
from linear_nets.data.tables import (
    Holdout,
    check_table_options,
    load_features,
    load_table,
    open_table,
    read_table_info,
)
from linear_nets.errors import ConfigError, DataError
from linear_nets.pipeline.tables import StreamedTable, TableOptions, load_in_memory

FORMATS = ["csv", "csv.gz", "parquet", "parquet-directory"]


def _wb(result) -> tuple[torch.Tensor, torch.Tensor]:
    """w and b of a least-squares result, as tensors."""
    return torch.from_numpy(result.w.copy()), torch.tensor(result.b, dtype=torch.float64)


def write(table: pa.Table, directory: Path, fmt: str, name: str = "data", row_group_size: int = 16) -> Path:
    """Write `table` as `fmt`; a Parquet directory gets three files of several row groups each."""
    if fmt == "csv":
        path = directory / f"{name}.csv"
        pacsv.write_csv(table, path)
    elif fmt == "csv.gz":
        path = directory / f"{name}.csv.gz"
        with pa.CompressedOutputStream(str(path), "gzip") as out:
            pacsv.write_csv(table, out)
    elif fmt == "parquet":
        path = directory / f"{name}.parquet"
        pq.write_table(table, path, row_group_size=row_group_size)
    else:
        path = directory / name
        path.mkdir()
        bounds = np.linspace(0, table.num_rows, 4).astype(int)
        for k, (start, stop) in enumerate(itertools.pairwise(bounds)):
            pq.write_table(table.slice(start, stop - start), path / f"part-{k}.parquet", row_group_size=row_group_size)
        (path / "_SUCCESS").write_text("")  # marker files some writers leave are skipped
    return path


def houses(n: int = 60, seed: int = 0) -> pa.Table:
    """An id column (to follow rows), two numbers, a text category and a numeric target."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 200, n).round(1)
    rooms = rng.integers(1, 7, n)
    colour = np.array(["red", "blue", "green"])[np.arange(n) % 3]
    price = 3 * area + 20 * rooms + np.select([colour == "red", colour == "blue"], [50, -10], 0) + rng.normal(0, 5, n)
    return pa.table({"id": np.arange(n), "area": area, "rooms": rooms, "colour": colour, "price": price})


def expected_sha256(names: list[str], types: list[str]) -> str:
    fields = [{"name": n, "type": t} for n, t in zip(names, types, strict=True)]
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------- reading formats


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_end_to_end(tmp_path, fmt):
    table = houses()
    path = write(table, tmp_path, fmt)
    info = read_table_info(path)
    assert info.format == fmt and info.num_rows == 60
    assert info.columns == ["id", "area", "rooms", "colour", "price"]
    assert info.types == ["int64", "double", "int64", "string", "double"]
    assert info.schema_sha256 == expected_sha256(info.columns, info.types)
    files = [path] if path.is_file() else list(path.glob("*.parquet"))
    assert info.size_bytes == sum(f.stat().st_size for f in files)
    json.dumps(info.to_dict())

    X, y, spec, loaded_info = load_table(path, "price", categorical=["colour"])
    assert loaded_info == info
    assert spec.feature_names == ["id", "area", "rooms", "colour=blue", "colour=green", "colour=red"]
    assert X.dtype == torch.float32 and X.shape == (60, 6) and y.dtype == torch.float32
    np.testing.assert_array_equal(X[:, 1].numpy(), table.column("area").to_numpy().astype(np.float32))
    assert X[:, 3:].sum(1).eq(1).all() and X[0, 5] == 1  # row 0 is red
    np.testing.assert_allclose(y.numpy(), table.column("price").to_numpy(), rtol=1e-6)

    source = open_table(path)
    streamed = list(stream_batches(source, spec, 7, shuffle=False))
    torch.testing.assert_close(torch.cat([b[0] for b in streamed]), X)
    assert [len(b[0]) for b in streamed] == [7] * 8 + [4]


def test_parquet_parts_are_row_groups_in_file_order(tmp_path):
    source = open_table(write(houses(), tmp_path, "parquet-directory"))
    parts = source.parts()
    assert [p.num_rows for p in parts] == [16, 4, 16, 4, 16, 4]
    assert [p.first_row for p in parts] == [0, 16, 20, 36, 40, 56]


def test_schema_checksum_follows_names_and_types(tmp_path):
    a = read_table_info(write(pa.table({"x": [1.0], "y": [2.0]}), tmp_path, "parquet", "a"))
    b = read_table_info(write(pa.table({"x": [5.0, 6.0], "y": [7.0, 8.0]}), tmp_path, "parquet", "b"))
    c = read_table_info(write(pa.table({"x": pa.array([1.0], pa.float32()), "y": [2.0]}), tmp_path, "parquet", "c"))
    assert a.schema_sha256 == b.schema_sha256 != c.schema_sha256


# ---------------------------------------------------------------------------------------------- training schema


def test_spec_round_trips_through_json_and_encodes_alike(tmp_path):
    table = houses()
    spec = fit_spec(table, "price", features=["area", "colour", "rooms"], categorical=["colour", "rooms"])
    assert spec.categories == {"colour": ("blue", "green", "red"), "rooms": ("1", "2", "3", "4", "5", "6")}
    assert spec.ignored == ("id",)
    again = TableSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    X, y = spec.encode(table)
    X2, y2 = again.encode(table)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert X.shape == (60, 1 + 3 + 6)
    colour = X[:, 1:4].argmax(1).tolist()
    assert [spec.categories["colour"][i] for i in colour] == table.column("colour").to_pylist()


def test_integer_categories_and_classes_sort_numerically():
    table = pa.table({"code": [10, 2, 2, 10, 9], "x": [1.0, 2, 3, 4, 5], "label": [10, 2, 9, 2, 10]})
    spec = fit_spec(table, "label", task="classification", categorical=["code"])
    assert spec.categories["code"] == ("2", "9", "10")
    assert spec.classes == ("2", "9", "10") and spec.class_type == "integer"
    _, y = spec.encode(table)
    assert y.dtype == torch.int64 and y.tolist() == [2, 0, 1, 0, 2]
    assert spec.feature_names == ["code=2", "code=9", "code=10", "x"]


def test_string_classes_from_csv(tmp_path):
    path = tmp_path / "iris.csv"
    path.write_text("petal,species\n1.4,setosa\n4.7,versicolor\n6.0,virginica\n1.3,setosa\n")
    _, y, spec, _ = load_table(path, "species", task="classification")
    assert spec.classes == ("setosa", "versicolor", "virginica") and spec.class_type == "string"
    assert y.tolist() == [0, 1, 2, 0]


def test_load_table_with_a_fitted_spec_encodes_another_file(tmp_path):
    train = write(houses(60, seed=0), tmp_path, "csv", "train")
    test = write(houses(30, seed=1), tmp_path, "parquet", "test")
    _, _, spec, _ = load_table(train, "price", categorical=["colour"])
    X, _, spec_again, info = load_table(test, spec=spec)
    assert spec_again is spec and X.shape == (30, 6) and info.num_rows == 30


# ------------------------------------------------------------------------------------------------------- splits


def test_holdout_is_seeded_row_by_row_and_about_the_fraction():
    rows = np.arange(10_000)
    test = Holdout(0.2, seed=3, part="test").keep(rows)
    assert np.array_equal(test, ~Holdout(0.2, seed=3).keep(rows))  # train and test: complementary
    assert np.array_equal(test, Holdout(0.2, seed=3, part="test").keep(rows))
    assert not np.array_equal(test, Holdout(0.2, seed=4, part="test").keep(rows))
    assert 1850 < test.sum() < 2150  # binomial(10,000, 0.2): 2,000 ± 40 (one standard deviation)
    assert np.array_equal(Holdout(0.2, seed=3, part="test").keep(rows[7::13]), test[7::13])  # any rows, any order
    assert not Holdout(0.0, seed=3, part="test").keep(rows).any()


def _row_set(batches) -> set[tuple[float, ...]]:
    """The (X, y) rows of some batches as a set of tuples (X's values, then y)."""
    return {(*x, float(y)) for X, Y in batches for x, y in zip(X.tolist(), Y.reshape(-1).tolist(), strict=True)}


@pytest.mark.parametrize("fmt", ["csv", "parquet-directory"])
@pytest.mark.parametrize("drop_missing", [False, True])
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_same_seed_holds_out_the_same_rows_in_memory_and_streamed(tmp_path, fmt, drop_missing, task):
    table = gappy_houses() if drop_missing else houses(300)
    path = write(table, tmp_path, fmt, row_group_size=45)
    target, categorical = ("price", ["colour"]) if task == "regression" else ("colour", [])
    options = TableOptions(str(path), target, categorical=categorical, test_fraction=0.3, drop_missing=drop_missing)
    memory = load_in_memory(options, task, seed=11)
    streamed = StreamedTable(replace(options, stream=True), seed=11, task=task)
    assert streamed.spec == memory.spec
    test, train = _row_set([memory.test]), _row_set([memory.train])
    assert test == _row_set(streamed.batches("test", 64, shuffle=False))
    assert train == _row_set(streamed.batches("train", 64))
    # the test rows are those whose number in the file the seed holds out, whatever rows were dropped
    ids = Holdout(0.3, seed=11, part="test").keep(np.arange(table.num_rows))
    kept = ~memory.spec.missing_rows(table) if drop_missing else np.ones(table.num_rows, bool)
    id_column = memory.spec.feature_names.index("id")
    assert sorted(int(row[id_column]) for row in test) == np.flatnonzero(ids & kept).tolist()
    assert len(test) + len(train) == kept.sum() and (~kept).any() == drop_missing
    assert 0.2 < len(test) / kept.sum() < 0.4  # about the fraction, not exactly


def test_table_options_and_a_split_with_no_training_row_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^test_fraction must be a number >= 0 and < 1, got 1.0$") as caught:
        check_table_options(1.0)
    assert caught.value.fields == ("test_fraction",)
    with pytest.raises(ConfigError, match=r"^categorical_coding must be one of auto, onehot, treatment, got dummy"):
        TableOptions("t.csv", "y", categorical_coding="dummy").check()
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,2\n")
    # the coding is checked where the schema's layout is made, by fit_spec and load_table alike
    with pytest.raises(ConfigError, match=r"^coding must be one of onehot, treatment, got 'dummy'$"):
        fit_spec(pa.table({"x": [1.0], "y": [2.0]}), "y", coding="dummy")
    with pytest.raises(ConfigError, match=r"^coding must be one of onehot, treatment, got 'dummy'$"):
        load_table(path, "y", coding="dummy")
    held_out = [bool(Holdout(0.5, seed, part="test").keep([0])[0]) for seed in range(10)]
    with pytest.raises(DataError, match=r"^no rows of t.csv are left to fit \(all held out or missing values\)$"):
        load_table(path, "y").split(0.5, seed=held_out.index(True))  # the one row held out
    train, test = load_table(path, "y").split(0.5, seed=held_out.index(False))
    assert len(train[1]) == 1 and len(test[1]) == 0  # no test row: an empty test set, as streamed
    data = load_in_memory(TableOptions(str(path), "y", test_fraction=0.5), "regression", seed=held_out.index(False))
    assert data.test is None and data.record()["test_rows"] == 0  # and so no test set to score


# ------------------------------------------------------------------------------------------- closed form, stats


def random_regression(n: int, d: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d) + rng.normal(0, 5, d)
    y = X @ rng.normal(size=d) + 3 + rng.normal(size=n)
    return pa.table({**{f"x{j}": X[:, j] for j in range(d)}, "y": y})


@pytest.mark.parametrize("fmt", ["csv", "parquet-directory"])
def test_streamed_closed_form_equals_in_memory(tmp_path, fmt):
    path = write(random_regression(3000, 6, seed=fmt == "csv"), tmp_path, fmt, row_group_size=250)
    X, y, spec, _ = load_table(path, "y", dtype=torch.float64)
    w_mem, b_mem = least_squares(X, y)
    counts = RowCounts()
    w, b = _wb(stream_least_squares(open_table(path), spec, counts=counts, read_rows=100))
    torch.testing.assert_close(w, w_mem, rtol=1e-6, atol=0)
    torch.testing.assert_close(b, b_mem, rtol=1e-6, atol=0)
    assert (counts.rows_read, counts.rows_used) == (3000, 3000)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_closed_form_matches_scikit_learn_on_diabetes(tmp_path, fmt):
    data = load_diabetes()
    table = pa.table(
        {**{name: data.data[:, j] for j, name in enumerate(data.feature_names)}, "progression": data.target}
    )
    path = write(table, tmp_path, fmt, row_group_size=100)
    reference = LinearRegression().fit(data.data, data.target)
    X, y, spec, _ = load_table(path, "progression", dtype=torch.float64)
    for w, b in (least_squares(X, y), _wb(stream_least_squares(open_table(path), spec))):
        np.testing.assert_allclose(w.numpy(), reference.coef_, rtol=1e-6)
        np.testing.assert_allclose(b.item(), reference.intercept_, rtol=1e-6)


def gappy_houses(n: int = 400) -> pa.Table:
    """`houses` with a missing value in a number, a category and the target every few rows, and a float32 column."""
    table = houses(n, seed=3)
    area = table.column("area").to_numpy().copy()
    area[5::37] = np.nan
    price = table.column("price").to_numpy().copy()
    price[11::41] = np.inf
    colour = [None if i % 53 == 7 else c for i, c in enumerate(table.column("colour").to_pylist())]
    small = pa.array(np.random.default_rng(4).normal(size=n).astype(np.float32))
    return (
        table.set_column(1, "area", pa.array(area))
        .set_column(3, "colour", pa.array(colour))
        .set_column(4, "price", pa.array(price))
        .append_column("small", small)
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet-directory"])
def test_streamed_closed_form_with_categories_missing_values_and_holdout(tmp_path, fmt):
    table = gappy_houses()
    path = write(table, tmp_path, fmt, row_group_size=45)
    source = open_table(path)
    features = ["area", "colour", "rooms", "small"]
    spec = fit_spec(source, "price", features=features, categorical=["colour"], drop_missing=True)
    holdout = Holdout(0.3, seed=2)
    counts = RowCounts()
    kept = holdout.keep(np.arange(table.num_rows))
    training = table.filter(pa.array(kept))
    missing = spec.missing_rows(training)
    X, y = spec.encode(training.filter(pa.array(~missing)), dtype=torch.float64)
    # The one-hot columns of a category add up to the column of ones: both return the minimum-norm solution.
    with pytest.warns(RankDeficientWarning, match="rank 6 < 7"):
        w, b = _wb(stream_least_squares(source, spec, drop_missing=True, holdout=holdout, counts=counts, read_rows=32))
    with pytest.warns(RankDeficientWarning, match="rank 6 < 7"):
        w_mem, b_mem = least_squares(X, y)
    torch.testing.assert_close(w, w_mem, rtol=1e-6, atol=0)
    torch.testing.assert_close(b, b_mem, rtol=1e-6, atol=0)
    assert spec.feature_names == ["area", "colour=blue", "colour=green", "colour=red", "rooms", "small"]
    expected = (400, int((~kept).sum()), int(missing.sum()), len(y))
    assert (counts.rows_read, counts.rows_held_out, counts.rows_dropped, counts.rows_used) == expected


def test_streamed_closed_form_when_a_later_batch_is_larger(tmp_path):
    table = random_regression(700, 4, seed=5)
    directory = tmp_path / "grows"
    directory.mkdir()
    pq.write_table(table.slice(0, 30), directory / "a.parquet")  # the first batch is the smallest: the buffer grows
    pq.write_table(table.slice(30), directory / "b.parquet", row_group_size=300)
    X, y, spec, _ = load_table(directory, "y", dtype=torch.float64)
    w_mem, b_mem = least_squares(X, y)
    w, b = _wb(stream_least_squares(open_table(directory), spec, read_rows=1000))
    torch.testing.assert_close(w, w_mem, rtol=1e-6, atol=0)
    torch.testing.assert_close(b, b_mem, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("x1", 130, np.inf, r"column 'x1' has the value inf at row 131"),
        ("x0", 299, -np.inf, r"column 'x0' has the value -inf at row 300"),
        ("y", 0, np.nan, r"target 'y' has the value nan at row 1"),
        ("x2", 77, None, r"column 'x2' has a missing value \(empty cell or null\) at row 78"),
    ],
)
def test_streamed_closed_form_names_the_first_bad_value(tmp_path, column, row, value, message):
    table = random_regression(300, 3, seed=6)
    values = table.column(column).to_pylist()
    values[row] = value
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.float64()))
    source = open_table(write(table, tmp_path, "parquet", row_group_size=64))
    with pytest.raises(DataError, match=message):
        stream_least_squares(source, TableSpec("regression", "y", ("x0", "x1", "x2")), read_rows=50)


def test_streamed_feature_stats_equal_in_memory_ones_on_training_rows(tmp_path):
    path = write(houses(200), tmp_path, "parquet", row_group_size=30)
    X, _, spec, _ = load_table(path, "price", categorical=["colour"], dtype=torch.float64)
    holdout = Holdout(0.25, seed=7)
    train_rows = torch.from_numpy(np.flatnonzero(holdout.keep(np.arange(200))))
    stats = stream_feature_stats(open_table(path), spec, holdout=holdout, read_rows=17)
    reference = FeatureStats.of(X[train_rows])
    assert stats.count == len(train_rows) == reference.count
    torch.testing.assert_close(stats.mean, reference.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(stats.std, reference.std, rtol=1e-10, atol=1e-12)
    standardized = stats.standardize(X[train_rows])
    torch.testing.assert_close(standardized.mean(0), torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------------- streaming


def flatten(lists: list[list[int]]) -> list[int]:
    return [x for part in lists for x in part]


def epoch_ids(source, spec, seed, epoch, **kwargs) -> list[list[int]]:
    return [X[:, 0].long().tolist() for X, _ in stream_batches(source, spec, 10, seed=seed, epoch=epoch, **kwargs)]


@pytest.mark.parametrize("fmt", ["csv", "parquet-directory"])
def test_stream_is_deterministic_and_covers_every_row_once(tmp_path, fmt):
    source = open_table(write(houses(300), tmp_path, fmt, row_group_size=25))
    spec = fit_spec(source, "price", categorical=["colour"])
    first = epoch_ids(source, spec, seed=5, epoch=0, shuffle_buffer=64, read_rows=20)
    assert first == epoch_ids(source, spec, seed=5, epoch=0, shuffle_buffer=64, read_rows=20)
    assert first != epoch_ids(source, spec, seed=5, epoch=1, shuffle_buffer=64, read_rows=20)
    assert first != epoch_ids(source, spec, seed=6, epoch=0, shuffle_buffer=64, read_rows=20)
    for epoch in range(3):
        batches = epoch_ids(source, spec, seed=5, epoch=epoch, shuffle_buffer=64, read_rows=20)
        assert sorted(flatten(batches)) == list(range(300))
        assert [len(b) for b in batches] == [10] * 30
    assert flatten(epoch_ids(source, spec, 0, 0, shuffle=False)) == list(range(300))
    assert flatten(first) != list(range(300))


def test_holdout_splits_a_stream_into_complementary_parts(tmp_path):
    source = open_table(write(houses(300), tmp_path, "parquet", row_group_size=25))
    spec = fit_spec(source, "price", categorical=["colour"])
    train_counts, test_counts = RowCounts(), RowCounts()
    train = flatten(epoch_ids(source, spec, 1, 2, holdout=Holdout(0.3, seed=9), counts=train_counts))
    test = flatten(epoch_ids(source, spec, 1, 2, holdout=Holdout(0.3, seed=9, part="test"), counts=test_counts))
    assert sorted(train + test) == list(range(300)) and not set(train) & set(test)
    assert 60 < len(test) < 120
    assert (train_counts.rows_read, train_counts.rows_held_out, train_counts.rows_used) == (300, len(test), len(train))


def test_drop_missing_drops_and_counts_rows_in_memory_and_streamed(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("x,colour,y\n1,red,2\n,blue,3\n3,red,nan\n4,,5\n5,blue,inf\n6,red,7\n")
    loaded = load_table(path, "y", categorical=["colour"], drop_missing=True)
    assert loaded.rows_dropped == 4 and loaded.X[:, 0].tolist() == [1.0, 6.0]
    assert loaded.spec.categories == {"colour": ("red",)}  # categories of the rows kept only
    counts = RowCounts()
    source = open_table(path)
    spec = fit_spec(source, "y", categorical=["colour"], drop_missing=True)
    assert spec == loaded.spec
    rows = [X[:, 0].tolist() for X, _ in stream_batches(source, spec, 4, drop_missing=True, counts=counts)]
    assert sorted(flatten(rows)) == [1.0, 6.0] and (counts.rows_dropped, counts.rows_used) == (4, 2)


# ------------------------------------------------------------------------------------------ errors: the file


def test_file_errors(tmp_path):
    cases = {
        "missing.csv": (None, "missing.csv does not exist"),
        "table.xlsx": (b"PK\x03\x04", "is not a table this tool reads: give a .csv, .csv.gz or .parquet"),
        "empty.csv": (b"", "empty.csv is empty (0 bytes)"),
        "header.csv": (b"a,b\n", "header.csv has columns but no rows"),
        "text.parquet": (b"a,b\n1,2\n", "text.parquet is not a Parquet file"),
        "parquet.csv": (b"PAR1\x00\x00", "parquet.csv is a Parquet file, not CSV: rename it to .parquet"),
        "binary.csv": (b"a,b\x00\x01\x02", "binary.csv is not a text (CSV) file"),
        "plain.csv.gz": (b"a,b\n1,2\n", "plain.csv.gz is not gzip-compressed"),
        "broken.parquet": (b"PAR1garbagePAR1", "cannot read broken.parquet as Parquet"),
        "ragged.csv": (  # pyarrow's reader names the row when it reads serially (one CPU, or OMP_NUM_THREADS=1)
            b"a,b\n1,2\n3\n",
            re.compile(r"cannot read ragged\.csv as CSV: CSV parse error: (Row #3: )?Expected 2 columns, got 1"),
        ),
        "gzheader.csv.gz": (gzip.compress(b"a,b\n"), "gzheader.csv.gz has columns but no rows"),
    }
    for name, (content, message) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        pattern = message if isinstance(message, re.Pattern) else re.escape(message)
        with pytest.raises(DataError, match=pattern) as caught:
            open_table(tmp_path / name).info()
        assert "\n" not in str(caught.value)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match=r"holds no .parquet files"):
        open_table(tmp_path / "nothing")
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), tmp_path / "norows.parquet")
    with pytest.raises(DataError, match=r"norows.parquet has columns but no rows"):
        open_table(tmp_path / "norows.parquet")


def test_unreadable_file(tmp_path, monkeypatch):
    import linear_nets.data.tables as tables

    path = tmp_path / "secret.csv"
    path.write_text("a,b\n1,2\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tables, "open", refuse, raising=False)  # root may read any file, so refuse it here
    with pytest.raises(DataError, match=r"cannot read .*secret.csv: Permission denied: check its permissions"):
        open_table(path)


def test_parquet_directory_files_must_share_a_schema(tmp_path):
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"x": [1.0], "y": [2.0]}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"x": [1], "y": [2.0]}), tmp_path / "d" / "b.parquet")
    with pytest.raises(DataError, match=r"b.parquet in d has columns or types different from a.parquet"):
        open_table(tmp_path / "d")


def test_duplicate_column_names(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"dup.csv has duplicate column names 'a': rename them"):
        open_table(path)


# ------------------------------------------------------------------------------------------ errors: the columns


def test_missing_target_or_feature_lists_the_columns(tmp_path):
    path = write(houses(), tmp_path, "csv")
    with pytest.raises(
        DataError,
        match=r"target column 'cost' is not in data.csv \(its columns: 'id', 'area', "
        r"'rooms', 'colour', 'price'\): pass one of them as the target",
    ):
        load_table(path, "cost")
    with pytest.raises(
        DataError, match=r"feature column 'size' is not in data.csv \(its columns: 'id', .*fix features$"
    ) as caught:
        load_table(path, "price", features=["area", "size"])
    assert "features" in caught.value.fields  # the command line writes it as --features
    with pytest.raises(ConfigError, match=r"^features includes the target 'price'") as caught:
        load_table(path, "price", features=["area", "price"])
    assert caught.value.fields == ("features",)
    with pytest.raises(ConfigError, match=r"^categorical names 'id', which is not a feature column") as caught:
        load_table(path, "price", features=["area"], categorical=["id"])
    assert caught.value.fields == ("categorical",)


def test_text_feature_must_be_named_categorical(tmp_path):
    path = write(houses(), tmp_path, "parquet")
    with pytest.raises(
        DataError,
        match=r"column 'colour' holds text .*: pass categorical colour to one-hot encode "
        r"it, leave it out of features, or if a text such as NA marks missing numbers pass na_values NA",
    ):
        load_table(path, "price")


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("x,y\n1,2\n,3\n", "column 'x' has a missing value (empty cell or null) at row 2"),
        ("x,y\n1,2\n2,3\nnan,4\n", "column 'x' has the value nan at row 3"),
        ("x,y\n1,2\n2,3\n3,4\ninf,5\n", "column 'x' has the value inf at row 4"),
        ("x,y\n1,2\n2,-inf\n", "target 'y' has the value -inf at row 2"),
        ("x,c,y\n1,a,2\n2,,3\n", "column 'c' has a missing value (empty cell or null) at row 2"),
    ],
)
def test_missing_values_name_column_and_row(tmp_path, csv, message):
    path = tmp_path / "gaps.csv"
    path.write_text(csv)
    categorical = ["c"] if ",c," in csv else []
    with pytest.raises(DataError) as caught:
        load_table(path, "y", categorical=categorical)
    assert str(caught.value).startswith(message) and "pass drop_missing" in str(caught.value)
    assert caught.value.fields == ("drop_missing",)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(stream_batches(open_table(path), fit_spec(open_table(path), "y", categorical=categorical), 2))


def test_nan_in_parquet_names_the_row_across_files(tmp_path):
    table = pa.table({"x": np.r_[np.arange(40.0), np.nan, np.arange(9.0)], "y": np.arange(50.0)})
    source = open_table(write(table, tmp_path, "parquet-directory", row_group_size=8))
    spec = fit_spec(source, "y")
    with pytest.raises(DataError, match=r"column 'x' has the value nan at row 41"):
        list(stream_batches(source, spec, 4, seed=0))
    with pytest.raises(DataError, match=r"column 'x' has the value nan at row 41"):
        stream_least_squares(source, spec)


def test_classification_needs_two_classes_and_regression_a_number(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,label,kind\n1,a,3\n2,a,\n")
    with pytest.raises(DataError, match=r"target 'label' has only the class 'a': classification needs at least two"):
        load_table(path, "label", task="classification", features=["x"])
    with pytest.raises(DataError, match=r"target 'label' is not numeric .*: regression needs a number"):
        load_table(path, "label", features=["x"])
    with pytest.raises(ConfigError, match=r"task must be 'regression' or 'classification'"):
        load_table(path, "kind", task="ranking")


def test_non_numeric_value_after_the_first_block_names_column_and_row(tmp_path):
    path = tmp_path / "big.csv"
    rows = 700_000  # about 5 MB: the type is inferred from the first 4 MiB, the bad value comes later
    path.write_text("x,y\n" + "1.5,2\n" * (rows - 1) + "n/a?,3\n")
    message = rf"column 'x' of big.csv has the value 'n/a\?' at row {rows}, which is not a number: fix it"
    with pytest.raises(DataError, match=message):
        load_table(path, "y")
    source = open_table(path)
    with pytest.raises(DataError, match=message):
        stream_least_squares(source, TableSpec("regression", "y", ("x",)))


# ----------------------------------------------------------------------------------- errors: at prediction time


def test_prediction_time_errors(tmp_path):
    table = houses()
    spec = fit_spec(table, "price", categorical=["colour"])
    new = table.drop_columns(["price"]).slice(0, 5)
    assert spec.encode_features(new).shape == (5, 6)
    assert spec.encode_features(table.slice(0, 5)).shape == (5, 6)  # the target may be there
    with pytest.raises(DataError, match=r"the table has no column 'rooms' \(its columns: .*add the missing ones"):
        spec.encode_features(new.drop_columns(["rooms"]))
    with pytest.raises(DataError, match=r"the table has column 'garden' that the training table did not have: remove"):
        spec.encode_features(new.append_column("garden", pa.array([1] * 5)))
    as_text = new.set_column(1, "area", pa.array(["70"] * 5))
    with pytest.raises(DataError, match=r"column 'area' is string in the table but was double in training"):
        spec.encode_features(as_text)
    purple = new.set_column(3, "colour", pa.array(["red", "red", "purple", "red", "blue"]))
    with pytest.raises(
        DataError,
        match=r"column 'colour' has the category 'purple' at row 3, which was not seen in "
        r"training \(categories: 'blue', 'green', 'red'\)",
    ):
        spec.encode_features(purple)


def test_unseen_class_at_evaluation(tmp_path):
    spec = fit_spec(pa.table({"x": [1.0, 2.0], "label": ["cat", "dog"]}), "label", task="classification")
    with pytest.raises(
        DataError,
        match=r"target 'label' has the label 'cow' at row 2, which was not seen in training "
        r"\(classes: 'cat', 'dog'\)",
    ):
        spec.encode(pa.table({"x": [1.0, 2.0], "label": ["dog", "cow"]}))


def test_malformed_spec_dict():
    with pytest.raises(DataError, match=r"training schema is malformed .*'target'"):
        TableSpec.from_dict({"task": "regression", "features": ["x"]})


def test_load_features_checks_the_file_it_predicts_on(tmp_path):
    spec = fit_spec(houses(), "price", categorical=["colour"])
    new = write(houses(10, seed=2).drop_columns(["price"]), tmp_path, "csv", "new")
    assert load_features(new, spec).shape == (10, 6)
    extra = write(houses(10).append_column("garden", pa.array([1] * 10)), tmp_path, "parquet", "extra")
    with pytest.raises(DataError, match=r"extra.parquet has column 'garden' that the training table did not have"):
        load_features(extra, spec)


def test_a_large_file_is_identified_by_samples_and_an_edit_in_one_is_noticed(tmp_path, monkeypatch):
    from linear_nets.data import tables

    monkeypatch.setattr(tables, "WHOLE_HASH_BYTES", 1 << 16)  # this 1 MB file counts as large
    monkeypatch.setattr(tables, "SAMPLE_BYTES", 1 << 10)
    path = tmp_path / "t.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
    path.write_bytes(bytes(data))
    before = tables.file_identity(path)["sha256"]
    data[0] ^= 1  # the first byte is always sampled
    path.write_bytes(bytes(data))
    assert tables.file_identity(path)["sha256"] != before
    path.write_bytes(bytes(data) + b"x")  # and the size is part of it
    assert tables.file_identity(path)["sha256"] not in (before,)


def test_a_streamed_fit_with_no_row_left_says_so_in_one_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,\n2,\n3,\n")  # every target missing: --drop-missing leaves nothing
    source = open_table(path)
    spec = TableSpec("regression", "y", ("x",), column_types={"x": "int64", "y": "double"})
    with pytest.raises(DataError, match=r"no rows of t\.csv are left to fit \(all held out or missing values\)"):
        stream_least_squares(source, spec, drop_missing=True)
