"""Tables as a practitioner meets them (issue 23): standardised by default, divergence caught, every cause named at
once, a run scored on its own held-out rows, predictions that keep the input's columns, and hostile tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from linear_nets.cli import main
from linear_nets.data.tables import Holdout


def _wine(path: str = "wine.csv") -> Path:
    """scikit-learn's bundled wine table (178 rows, 13 features on raw scales: proline ~1000, hue ~1)."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, path) if path.endswith(".csv") else pq.write_table(table, path)
    return Path(path)


def _one_line(capsys, argv: list[str], fragment: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and fragment in err, err
    return err


# --- 1. no silent failure -------------------------------------------------------------------------------------------


def test_a_raw_scale_table_is_standardised_by_default_and_learns(capsys):
    _wine()
    assert main(["train", "softmax", "--data", "wine.csv", "--target", "target", "--out", "run"]) == 0
    config = json.loads(Path("run/config.json").read_text())
    assert config["config"]["standardize"] is True
    assert json.loads(Path("run/summary.json").read_text())["test_accuracy"] > 0.85  # chance is 0.40


def test_no_standardize_on_raw_scales_ends_as_diverged_with_the_hint_and_leaves_no_run(capsys):
    _wine()
    argv = ["train", "softmax", "--data", "wine.csv", "--target", "target", "--no-standardize", "--out", "run"]
    err = _one_line(capsys, argv, "training diverged: the training loss rose from")
    assert "more than 10x" in err and "--no-standardize" in err
    assert not Path("run").exists()


def test_sgd_linear_regression_on_a_table_is_standardised_by_default(capsys):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), "diabetes.csv")
    base = ["train", "linreg", "--data", "diabetes.csv", "--target", "target", "--epochs", "20"]
    assert main([*base, "--out", "default"]) == 0
    assert json.loads(Path("default/config.json").read_text())["config"]["standardize"] is True
    assert json.loads(Path("default/summary.json").read_text())["test_r2"] > 0.4
    # on raw scales (s1 in the hundreds) the book's lr 0.03 blows up: caught, not a run at R² < 0
    _one_line(capsys, [*base, "--no-standardize", "--out", "raw"], "training diverged")
    assert not Path("raw").exists()


def test_the_curves_show_the_whole_loss():
    from linear_nets.cli.train_softmax import _whole
    from linear_nets.training import EpochRecord, History

    history = History([EpochRecord(1, 3.4, 0.4, test_accuracy=0.3), EpochRecord(2, 9.0, 0.3, test_accuracy=0.3)])
    low, high = _whole(history.as_dicts(), (0.0, 1.0))
    assert low == 0.0 and high >= 9.0
    assert _whole(History([EpochRecord(1, 0.5, 0.8, test_accuracy=0.8)]).as_dicts(), (0.0, 1.0)) == (0.0, 1.0)


# --- 2. every cause at once, and before the table is read -----------------------------------------------------------


def test_every_text_column_and_every_missing_column_is_named_in_one_line(capsys):
    pacsv.write_csv(pa.table({"x": [1.0, 2.0], "city": ["a", "b"], "code": ["u", "v"], "y": [0, 1]}), "t.csv")
    err = _one_line(capsys, ["train", "softmax", "--data", "t.csv", "--target", "y", "--out", "run"],
                    "column 'city', 'code' holds text")  # fmt: skip
    assert "--categorical city,code" in err
    err = _one_line(capsys, ["train", "linreg", "--data", "t.csv", "--target", "z", "--features", "x,w,v",
                             "--out", "run"], "target column 'z' is not in t.csv")  # fmt: skip
    assert "feature column 'w', 'v' is not in t.csv" in err
    assert not Path("run").exists()


def _count_reads(monkeypatch) -> list:
    from linear_nets.data import tables
    from linear_nets.pipeline import tables as pipeline_tables

    opened = []
    real = tables.open_table
    for module in (tables, pipeline_tables):  # in memory and streamed
        monkeypatch.setattr(module, "open_table", lambda path: opened.append(path) or real(path))
    return opened


@pytest.mark.parametrize("argv, fragment", [
    (["--out", "taken"], "--out taken: exists and is not an empty directory"),
    (["--stream", "--val-fraction", "0.1", "--out", "run"], "--stream trains with minibatches"),
    (["--stream", "--sampling", "with-replacement", "--out", "run"], "--stream shuffles through a buffer"),
])  # fmt: skip
def test_checks_that_need_no_data_come_before_the_table_is_read(capsys, monkeypatch, argv, fragment):
    _wine()
    Path("taken").mkdir()
    Path("taken/keep.txt").write_text("an earlier run")
    opened = _count_reads(monkeypatch)
    _one_line(capsys, ["train", "softmax", "--data", "wine.csv", "--target", "target", *argv], fragment)
    assert opened == [] and Path("taken/keep.txt").exists()


def test_linreg_stream_flags_are_checked_before_the_table_is_read(capsys, monkeypatch):
    _wine()
    opened = _count_reads(monkeypatch)
    argv = ["train", "linreg", "--data", "wine.csv", "--target", "alcohol", "--stream", "--impl", "manual"]
    _one_line(capsys, argv, "--stream trains SGD with torch.nn: add --impl concise")
    assert opened == []


# --- 3. a run scored on its own data ----------------------------------------------------------------------------------


def _evaluation(run: str = "run") -> dict:
    return json.loads((Path(run) / "evaluation.json").read_text())


@pytest.mark.parametrize("stream", [False, True])
def test_evaluate_a_softmax_table_run_scores_its_own_held_out_rows(capsys, stream):
    _wine("wine.parquet")
    argv = ["train", "softmax", "--data", "wine.parquet", "--target", "target", "--test-fraction", "0.3", "--seed", "3"]
    assert main([*argv, *(["--stream"] if stream else []), "--out", "run"]) == 0
    trained = json.loads(Path("run/summary.json").read_text())["test_accuracy"]
    capsys.readouterr()
    assert main(["evaluate", "run"]) == 0
    out = capsys.readouterr().out
    assert "held out by seed 3" in out
    assert _evaluation()["accuracy"] == pytest.approx(trained, abs=1e-6)  # the same rows, the same model
    # the rows seed 3 holds out of wine's 178 (`Holdout`, row by row), in memory and streamed alike
    assert _evaluation()["n"] == Holdout(0.3, seed=3, part="test").keep(np.arange(178)).sum() == 54


@pytest.mark.parametrize("stream", [False, True])
def test_evaluate_a_linreg_table_run_scores_its_own_held_out_rows(capsys, stream):
    _wine()
    argv = ["train", "linreg", "--data", "wine.csv", "--target", "alcohol", "--impl", "concise", "--epochs", "5"]
    assert main([*argv, *(["--stream"] if stream else []), "--out", "run"]) == 0
    summary = json.loads(Path("run/summary.json").read_text())
    assert main(["evaluate", "run"]) == 0
    assert _evaluation()["mse"] == pytest.approx(summary["test_mse"], rel=1e-6)
    assert _evaluation()["n"] == summary["test_rows"] == Holdout(0.2, seed=0, part="test").keep(np.arange(178)).sum()


def test_evaluate_refuses_a_changed_table_in_one_line_and_scores_a_new_one_with_data(capsys):
    path = _wine()
    assert main(["train", "softmax", "--data", "wine.csv", "--target", "target", "--out", "run"]) == 0
    path.write_text(path.read_text().replace("\n14.23,", "\n14.24,", 1))
    _one_line(capsys, ["evaluate", "run"], "wine.csv has changed since the run was trained")
    assert main(["evaluate", "run", "--data", "wine.csv"]) == 0
    assert _evaluation()["n"] == 178 and _evaluation()["data"] == "wine.csv"


def test_evaluate_a_run_with_test_data_scores_that_file(capsys):
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    pacsv.write_csv(pa.Table.from_pandas(frame.iloc[::2], preserve_index=False), "train.csv")
    pacsv.write_csv(pa.Table.from_pandas(frame.iloc[1::2], preserve_index=False), "test.csv")
    argv = ["train", "softmax", "--data", "train.csv", "--test-data", "test.csv", "--target", "target", "--out", "run"]
    assert main(argv) == 0
    trained = json.loads(Path("run/summary.json").read_text())["test_accuracy"]
    assert main(["evaluate", "run"]) == 0
    assert _evaluation()["n"] == 75 and _evaluation()["accuracy"] == pytest.approx(trained, abs=1e-6)


def test_a_command_on_a_run_of_the_other_kind_names_the_flag_it_needs(capsys):
    _wine()
    assert main(["train", "softmax", "--data", "wine.csv", "--target", "target", "--out", "run"]) == 0
    _one_line(capsys, ["predict", "run"], "was trained on a table: pass --data FILE")
    assert main(["train", "linreg", "--epochs", "1", "--out", "synthetic"]) == 0
    _one_line(capsys, ["evaluate", "synthetic", "--data", "wine.csv"], "trained on synthetic data, not a table")
    assert "leave out --data" in _one_line(capsys, ["predict", "synthetic", "--data", "wine.csv"], "not a table")


def test_no_test_rows_print_no_test_line_and_write_no_nan(capsys):
    _wine()
    capsys.readouterr()
    argv = ["train", "linreg", "--data", "wine.csv", "--target", "alcohol", "--test-fraction", "0", "--out", "run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test MSE" not in out and "nan" not in out.lower()
    assert "NaN" not in Path("run/summary.json").read_text() and "NaN" not in Path("run/metrics.jsonl").read_text()
    _one_line(capsys, ["evaluate", "run"], "the run held out no test rows (--test-fraction 0): pass --data FILE")


# --- 4. one way to load a run from Python -----------------------------------------------------------------------------


def _zoo(n: int = 240, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    size = rng.normal(50, 20, n)
    colour = rng.choice(["red", "blue", "green"], n)
    score = size / 20 + (colour == "red") * 2 + rng.normal(0, 0.3, n)
    animal = np.where(score < 2.5, "cat", np.where(score < 4, "dog", "emu"))
    return pa.table({"id": np.arange(n), "size": size, "colour": colour, "animal": animal,
                     "weight": 3 * size - 5 * (colour == "blue") + rng.normal(0, 1, n)})  # fmt: skip


def test_load_a_softmax_table_run_predicts_a_dataframe_a_table_and_a_file_alike(capsys):
    import linear_nets

    table = _zoo()
    pacsv.write_csv(table, "zoo.csv")
    argv = ["train", "softmax", "--data", "zoo.csv", "--target", "animal", "--features", "size,colour",
            "--categorical", "colour", "--epochs", "30", "--out", "run"]  # fmt: skip
    assert main(argv) == 0
    model = linear_nets.load("run")
    assert model.classes == ["cat", "dog", "emu"]
    rows = table.select(["size", "colour"])
    proba = model.predict_proba(rows)
    np.testing.assert_allclose(proba, model.predict_proba(rows.to_pandas()), rtol=1e-6)
    np.testing.assert_allclose(proba, model.predict_proba("zoo.csv"), rtol=1e-6)
    assert list(model.predict(rows)) == [model.classes[k] for k in proba.argmax(axis=1)]
    # the coefficients are the model in the raw columns' units: softmax(x W + b) from them alone, in float64
    names = ["size", "colour=blue", "colour=green", "colour=red"]
    X = np.column_stack([table["size"].to_numpy()] + [(table["colour"].to_numpy() == c) for c in
                                                       ("blue", "green", "red")]).astype(np.float64)  # fmt: skip
    W = np.array([[model.coefficients[c][f] for c in model.classes] for f in names])
    logits = X @ W + np.array([model.intercept[c] for c in model.classes])
    reference = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(proba, reference / reference.sum(axis=1, keepdims=True), atol=1e-5)  # float32 model
    assert (model.predict(rows) == table["animal"].to_numpy()).mean() > 0.7  # it learned (chance: about 1/3)


def test_load_a_linreg_table_run_predicts_with_its_coefficients(capsys):
    import linear_nets

    table = _zoo()
    pq.write_table(table, "zoo.parquet")
    argv = ["train", "linreg", "--data", "zoo.parquet", "--target", "weight", "--features", "size,colour",
            "--categorical", "colour", "--solver", "closed-form", "--out", "run"]  # fmt: skip
    assert main(argv) == 0
    model = linear_nets.load("run")
    summary = json.loads(Path("run/summary.json").read_text())
    assert model.coefficients == summary["coefficients"] and model.intercept == summary["intercept"]
    frame = table.to_pandas()[["size", "colour"]]
    assert "colour=blue" not in model.coefficients  # treatment coding beside the intercept: blue is the reference
    expected = frame["size"].to_numpy() * model.coefficients["size"] + model.intercept + np.select(
        [frame["colour"] == c for c in ("blue", "green", "red")],
        [0.0, *(model.coefficients[f"colour={c}"] for c in ("green", "red"))])  # fmt: skip
    np.testing.assert_allclose(model.predict(frame), expected, rtol=1e-12)
    assert main(["predict", "run", "--data", "zoo.parquet", "--out", "p.csv"]) == 0
    np.testing.assert_allclose(pacsv.read_csv("p.csv")["prediction"].to_numpy(), expected, rtol=1e-12)


def test_load_refuses_what_it_cannot_predict_with_in_one_line():
    import linear_nets
    from linear_nets.errors import ConfigError, DataError

    assert main(["train", "linreg", "--epochs", "1", "--out", "synthetic"]) == 0
    with pytest.raises(ConfigError, match="synthetic data: it has no table columns"):
        linear_nets.load("synthetic")
    with pytest.raises(ConfigError, match="run directory nowhere does not exist"):
        linear_nets.load("nowhere")
    pacsv.write_csv(_zoo(), "zoo.csv")
    assert main(["train", "softmax", "--data", "zoo.csv", "--target", "animal", "--categorical", "colour",
                 "--epochs", "1", "--out", "run"]) == 0  # fmt: skip
    with pytest.raises(DataError, match="expected a pandas DataFrame, a pyarrow Table or a table file's path"):
        linear_nets.load("run").predict([[1.0, 2.0]])


# --- 5. predictions keep the input's columns; 8. and never overwrite it --------------------------------------------


def _trained_zoo(capsys, name: str = "zoo.csv") -> pa.Table:
    table = _zoo()
    pacsv.write_csv(table, name) if name.endswith(".csv") else pq.write_table(table, name)
    argv = ["train", "linreg", "--data", name, "--target", "weight", "--features", "size,colour", "--categorical",
            "colour", "--solver", "closed-form", "--out", "run"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    return table


@pytest.mark.parametrize("name", ["zoo.csv", "zoo.parquet"])
def test_predict_keep_copies_the_named_input_columns_before_the_predictions(capsys, name):
    table = _trained_zoo(capsys, name)
    assert main(["predict", "run", "--data", name, "--keep", "id,colour", "--out", "p.parquet"]) == 0
    predicted = pq.read_table("p.parquet")
    assert predicted.column_names == ["id", "colour", "prediction"]
    assert [str(v) for v in predicted["id"].to_pylist()] == [str(v) for v in table["id"].to_pylist()]
    assert main(["predict", "run", "--data", name, "--keep-all", "--out", "all.csv"]) == 0
    assert pacsv.read_csv("all.csv").column_names == [*table.column_names, "prediction"]


def test_predict_keep_names_every_unknown_column_at_once(capsys):
    _trained_zoo(capsys)
    err = _one_line(capsys, ["predict", "run", "--data", "zoo.csv", "--keep", "id,key,row", "--out", "p.csv"],
                    "--keep names 'key', 'row', not a column of zoo.csv")  # fmt: skip
    assert not Path("p.csv").exists() and "'id'" in err  # the columns it has are listed


@pytest.mark.parametrize("out, fragment", [
    ("zoo.csv", "--out zoo.csv is the table --data reads"),
    ("old.csv", "--out old.csv exists: choose a new name, or pass --overwrite"),
    ("folder.csv", "--out folder.csv is a directory"),
    ("missing/p.csv", "the directory"),
    ("p.txt", "write predictions to a .csv or .parquet file"),
])  # fmt: skip
def test_predict_out_is_checked_before_reading_and_never_replaces_the_input(capsys, out, fragment):
    _trained_zoo(capsys)
    Path("old.csv").write_text("precious\n")
    Path("folder.csv").mkdir()
    before = Path("zoo.csv").read_bytes()
    _one_line(capsys, ["predict", "run", "--data", "zoo.csv", "--out", out], fragment)
    _one_line(capsys, ["predict", "run", "--data", "zoo.csv", "--out", "zoo.csv", "--overwrite"], "--data reads")
    assert Path("zoo.csv").read_bytes() == before and Path("old.csv").read_text() == "precious\n"


def test_predict_overwrite_replaces_an_earlier_file_and_upper_case_suffixes_are_tables(capsys):
    _trained_zoo(capsys)
    Path("old.CSV").write_text("precious\n")
    assert main(["predict", "run", "--data", "zoo.csv", "--out", "old.CSV", "--overwrite"]) == 0
    assert pacsv.read_csv("old.CSV").num_rows == 240


def test_predict_out_in_an_unwritable_directory_is_one_line(capsys, read_only):
    _trained_zoo(capsys)
    Path("locked").mkdir()
    read_only(Path("locked"))
    _one_line(capsys, ["predict", "run", "--data", "zoo.csv", "--out", "locked/p.csv"], "cannot write in")


# --- 6. class names whole in the confusion table --------------------------------------------------------------------


def test_the_confusion_table_prints_class_names_whole_and_numbers_long_ones():
    import torch

    from linear_nets.cli.saved_runs import _format_confusion

    text = _format_confusion(torch.tensor([[3, 0, 0], [0, 2, 1], [0, 0, 4]]), ["class_0", "class_1", "class_2"])
    assert text.splitlines()[1].split() == ["class_0", "class_1", "class_2"]
    long = ["a very long class name number one", "a very long class name number two"]
    lines = _format_confusion(torch.tensor([[1, 0], [0, 1]]), long).splitlines()
    assert lines[1].split() == ["0", "1"] and "0 " + long[0] in lines[2] and "1 " + long[1] in lines[3]


# --- 8. what a hostile probe broke ------------------------------------------------------------------------------------


@pytest.mark.parametrize("column, values, stream", [
    ("x", pa.array([1, 2, 2**60, 4, 5, 6], pa.int64()), False),
    ("x", pa.array([1, 2, 3, 4, 5, 2**64 - 1], pa.uint64()), True),
    ("y", pa.array([1, 2, 3, 4, 5, -(2**62)], pa.int64()), False),
])  # fmt: skip
def test_integers_beyond_2_53_are_one_line_naming_the_column_and_row_and_leave_no_run(capsys, column, values, stream):
    table = {"x": [1.0, 2, 3, 4, 5, 6], "y": [1.0, 2, 3, 4, 5, 6]} | {column: values}
    pq.write_table(pa.table(table), "big.parquet")
    argv = ["train", "linreg", "--data", "big.parquet", "--target", "y", "--solver", "closed-form", "--out", "run"]
    row = 1 + next(i for i, v in enumerate(values.to_pylist()) if abs(v) > 2**53)
    what = "target 'y'" if column == "y" else "column 'x'"
    err = _one_line(capsys, [*argv, *(["--stream"] if stream else [])], f"{what} has the integer")
    assert f"at row {row}, beyond 2^53" in err
    assert not Path("run").exists()  # not a directory holding only config.json, blocking the next --out run


def test_integers_up_to_2_53_are_read_exactly():
    from linear_nets.data.tables import load_table

    pq.write_table(pa.table({"x": pa.array([2**53, -(2**53), 1], pa.int64()), "y": [1.0, 2.0, 3.0]}), "t.parquet")
    import torch

    assert load_table("t.parquet", "y", dtype=torch.float64).X[:, 0].tolist() == [2**53, -(2**53), 1]


def test_csv_booleans_are_numbers_as_in_parquet():
    from linear_nets.data.tables import load_table

    pacsv.write_csv(pa.table({"b": [True, False, True], "y": [1.0, 2.0, 3.0]}), "t.csv")
    pq.write_table(pa.table({"b": [True, False, True], "y": [1.0, 2.0, 3.0]}), "t.parquet")
    assert load_table("t.csv", "y").X.tolist() == load_table("t.parquet", "y").X.tolist() == [[1.0], [0.0], [1.0]]


@pytest.mark.parametrize("make, fragment", [
    (lambda: Path("t.csv").write_bytes(b"caf\xe9,y\n1,2\n3,4\n"), "t.csv is not UTF-8 text"),
    (lambda: Path("t.csv").write_text("x" * (10 << 20) + ",y\n1,2\n"), "has a header or a row longer than 4 MiB"),
    (lambda: Path("t.csv").write_text("x,y\n" + "1" * (10 << 20) + ",2\n3,4\n"), "a header or a row longer"),
    (lambda: (Path("a.csv").symlink_to("t.csv"), Path("t.csv").symlink_to("a.csv")), "is a loop of symbolic links"),
    (lambda: os.mkfifo("t.csv"), "is not a regular file (a pipe, device or socket)"),
])  # fmt: skip
def test_hostile_files_are_one_line_never_a_traceback_or_a_hang(capsys, make, fragment):
    make()
    _one_line(capsys, ["train", "linreg", "--data", "t.csv", "--target", "y", "--out", "run"], fragment)
    assert not Path("run").exists()


def test_a_million_threads_is_refused_before_any_work(capsys):
    _one_line(capsys, ["train", "softmax", "--threads", "1000000", "--out", "run"],
              "--threads must be an integer >= 1 and <= 1024, got 1000000")  # fmt: skip


def test_evaluation_and_metrics_never_hold_a_bare_nan(capsys):
    pacsv.write_csv(pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": [5.0, 5.0, 5.0, 5.0]}), "flat.csv")
    argv = ["train", "linreg", "--data", "flat.csv", "--target", "y", "--test-fraction", "0", "--out", "run"]
    assert main(argv) == 0
    assert main(["evaluate", "run", "--data", "flat.csv"]) == 0  # a constant target: R² is undefined
    for name in ("evaluation.json", "metrics.jsonl", "summary.json", "config.json"):
        text = Path("run", name).read_text()
        assert "NaN" not in text and "Infinity" not in text, name
    assert json.loads(Path("run/evaluation.json").read_text())["r2"] is None


def test_csv_text_is_text_as_in_parquet_unless_na_values_says_otherwise(capsys):
    from linear_nets.data.tables import load_table

    countries = ["NA", "N/A", "null", "NaN", "None", "DE"] * 4
    table = pa.table({"country": countries, "x": np.arange(24.0), "y": np.arange(24.0) * 2})
    pacsv.write_csv(table, "t.csv")
    pq.write_table(table, "t.parquet")
    csv, parquet = (load_table(f"t.{ext}", "y", categorical=["country"]) for ext in ("csv", "parquet"))
    assert csv.spec.categories["country"] == parquet.spec.categories["country"] == tuple(sorted(set(countries)))
    assert csv.X.tolist() == parquet.X.tolist()
    # asked for, "NA" is a missing value: refused (naming it) or dropped
    argv = ["train", "linreg", "--data", "t.csv", "--target", "y", "--categorical", "country", "--na-values", "NA"]
    missing = "column 'country' has a missing value (empty cell or null) at row 1"
    err = _one_line(capsys, [*argv, "--out", "run"], missing)
    assert "pass --drop-missing to leave out rows" in err  # the field drop_missing, written as its flag
    _one_line(capsys, [*argv, "--test-fraction", "1", "--out", "run"], "--test-fraction must be a number >= 0 and < 1")
    assert main([*argv, "--drop-missing", "--solver", "closed-form", "--out", "run"]) == 0
    assert json.loads(Path("run/config.json").read_text())["data"]["rows_dropped"] == 4
    assert "country=NA" not in json.loads(Path("run/summary.json").read_text())["coefficients"]


def test_a_numeric_column_with_na_texts_names_the_flag(capsys):
    Path("t.csv").write_text("x,y\n1,1\nNA,2\n3,3\n")
    err = _one_line(capsys, ["train", "linreg", "--data", "t.csv", "--target", "y", "--out", "run"], "column 'x'")
    assert "--na-values NA" in err
    argv = ["train", "linreg", "--data", "t.csv", "--target", "y", "--na-values", "NA", "--drop-missing"]
    assert main([*argv, "--test-fraction", "0", "--solver", "closed-form", "--out", "run"]) == 0
    assert json.loads(Path("run/summary.json").read_text())["train_rows"] == 2


@pytest.mark.parametrize("stream", [False, True])
def test_memory_is_estimated_before_allocating_and_refused_with_the_figures(capsys, monkeypatch, stream):
    from linear_nets import checks

    n = 2000
    pq.write_table(pa.table({"city": [f"c{i}" for i in range(n)], "x": np.arange(n, dtype=float),
                             "y": np.arange(n, dtype=float)}), "cities.parquet")  # fmt: skip
    monkeypatch.setattr(checks, "available_memory", lambda: 10_000_000)  # 10 MB
    argv = ["train", "linreg", "--data", "cities.parquet", "--target", "y", "--categorical", "city",
            "--solver", "closed-form", "--out", "run", *(["--stream"] if stream else [])]  # fmt: skip
    err = _one_line(capsys, argv, "2,000 features")  # x, and 1,999 treatment-coded cities (c0 is the reference)
    assert "this machine has 10.0 MB available" in err and not Path("run").exists()
    assert ("--stream" in err) != stream  # streamed, it is not the way out


def test_the_rows_of_a_csv_are_estimated_before_it_is_read(capsys, monkeypatch):
    import gzip

    from linear_nets import checks
    from linear_nets.data.tables import open_table

    Path("t.csv.gz").write_bytes(gzip.compress(b"a,b,y\n" + b"1,2,3\n" * 300_000))  # 1.8 MB of text, 3 kB here
    assert 250_000 < open_table("t.csv.gz").estimated_rows() < 400_000
    monkeypatch.setattr(checks, "available_memory", lambda: 5_000_000)
    _one_line(capsys, ["train", "linreg", "--data", "t.csv.gz", "--target", "y", "--out", "run"], "reading t.csv.gz")


# --- 7. --stream with --test-data -----------------------------------------------------------------------------------


def test_stream_with_test_data_streams_the_test_file_and_equals_in_memory(capsys):
    table = _zoo(400)
    pq.write_table(table.slice(0, 300), "train.parquet", row_group_size=64)
    pq.write_table(table.slice(300), "test.parquet", row_group_size=64)
    base = ["train", "linreg", "--data", "train.parquet", "--test-data", "test.parquet", "--target", "weight",
            "--features", "size,colour", "--categorical", "colour", "--solver", "closed-form"]  # fmt: skip
    assert main([*base, "--out", "memory"]) == 0
    assert main([*base, "--stream", "--out", "streamed"]) == 0
    memory, streamed = (json.loads(Path(run, "summary.json").read_text()) for run in ("memory", "streamed"))
    assert streamed["test_rows"] == memory["test_rows"] == 100 and streamed["train_rows"] == 300
    # in memory the features are float32 (6e-8 relative each), streamed float64: equal to well within 1e-5
    assert streamed["test_mse"] == pytest.approx(memory["test_mse"], rel=1e-5)
    assert main(["evaluate", "streamed"]) == 0
    assert _evaluation("streamed")["mse"] == pytest.approx(streamed["test_mse"], rel=1e-12)
    softmax = ["train", "softmax", "--data", "train.parquet", "--test-data", "test.parquet", "--target", "animal",
               "--features", "size,colour", "--categorical", "colour", "--stream", "--out", "classes"]  # fmt: skip
    assert main(softmax) == 0
    trained = json.loads(Path("classes/summary.json").read_text())["test_accuracy"]
    assert main(["evaluate", "classes"]) == 0
    assert _evaluation("classes")["n"] == 100 and _evaluation("classes")["accuracy"] == pytest.approx(trained, abs=1e-6)


@pytest.mark.parametrize("stream", [False, True])
def test_csv_integers_from_2_to_the_53_are_one_line_not_rounded_numbers(capsys, stream):
    """A CSV's integer column is parsed as float64, which holds every integer only below 2^53: an id of
    9007199254740993 would arrive as ...992. One line naming the column and row, as for Parquet's int64."""
    Path("ids.csv").write_text("id,x,y\n1,0.5,1.0\n2,1.5,2.0\n9007199254740993,2.5,3.0\n4,3.5,4.0\n")
    base = ["train", "linreg", "--data", "ids.csv", "--target", "y", "--test-fraction", "0", "--solver",
            "closed-form", *(["--stream"] if stream else [])]  # fmt: skip
    err = _one_line(capsys, [*base, "--out", "run"], "column 'id' has the integer 9007199254740992 at row 3, at or "
                    "beyond 2^53")  # fmt: skip
    assert "may already be rounded" in err and not Path("run").exists()
    assert main([*base, "--features", "x", "--out", "without-id"]) == 0  # the id left out: the rest is fine
