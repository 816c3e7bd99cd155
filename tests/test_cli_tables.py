"""Your own table through the command line: every format, both models, in memory and streamed, and bad input."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch

from linear_nets.cli import main
from linear_nets.closed_form import least_squares


def _regression_table(n: int = 400, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
    y = X @ [2.0, -0.3, 5.0] + 4.0 + rng.normal(scale=0.1, size=n)
    return pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})


def _write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=100)
    elif path.name.endswith(".csv.gz"):
        plain = path.with_name("plain.csv")
        pacsv.write_csv(table, plain)
        path.write_bytes(gzip.compress(plain.read_bytes()))
    elif path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:  # a directory of Parquet files
        path.mkdir()
        for i, start in enumerate(range(0, table.num_rows, 150)):
            pq.write_table(table.slice(start, 150), path / f"part-{i}.parquet")
    return path


def _summary(run: str) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "t-dir"])
def test_closed_form_on_each_format_equals_least_squares_in_memory_and_streamed(name, capsys):
    table = _regression_table()
    path = _write(table, Path(name))
    argv = ["train", "linreg", "--data", str(path), "--target", "y", "--solver", "closed-form", "--test-fraction", "0"]
    assert main([*argv, "--out", "memory"]) == 0
    assert main([*argv, "--stream", "--out", "streamed"]) == 0
    X = torch.tensor(np.column_stack([table[c].to_numpy() for c in "abc"]))
    w, b = least_squares(X, torch.tensor(table["y"].to_numpy()))
    for run in ("memory", "streamed"):
        summary = _summary(run)
        got = [summary["coefficients"][c] for c in "abc"]
        np.testing.assert_allclose(got, w.tolist(), rtol=1e-6)
        assert summary["intercept"] == pytest.approx(b.item(), rel=1e-6)
        assert summary["train_rows"] == 400
    config = json.loads(Path("memory/config.json").read_text())
    assert config["data"]["table"]["num_rows"] == 400 and len(config["data"]["table"]["schema_sha256"]) == 64
    assert config["data"]["table"]["size_bytes"] > 0


def test_sgd_on_standardised_features_reports_coefficients_in_the_original_units(capsys):
    path = _write(_regression_table(), Path("t.parquet"))
    base = ["train", "linreg", "--data", str(path), "--target", "y"]
    assert main([*base, "--solver", "closed-form", "--out", "exact"]) == 0
    sgd = ["--impl", "concise", "--standardize", "--lr", "0.1", "--epochs", "40", "--batch-size", "16"]
    assert main([*base, *sgd, "--out", "memory"]) == 0
    assert main([*base, *sgd, "--stream", "--out", "streamed"]) == 0
    exact = _summary("exact")
    for run in ("memory", "streamed"):
        summary = _summary(run)
        for c in "abc":
            assert summary["coefficients"][c] == pytest.approx(exact["coefficients"][c], rel=0.02, abs=0.02), run
        assert summary["test_r2"] > 0.99 and summary["test_mse"] < 0.05
    # --test-fraction 0.2 of 400: the 89 rows seed 0 holds out (Holdout), in memory and streamed alike
    assert _summary("memory")["test_rows"] == _summary("streamed")["test_rows"] == 89


def test_softmax_on_a_table_keeps_class_names_in_summary_predictions_and_evaluation(capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    names = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    colour = rng.choice(["red", "blue"], size=300)
    _write(pa.table({"x1": X[:, 0], "x2": X[:, 1], "colour": colour, "animal": names}), Path("zoo.csv"))
    argv = ["train", "softmax", "--data", "zoo.csv", "--target", "animal", "--categorical", "colour",
            "--lr", "0.5", "--epochs", "20", "--batch-size", "16", "--no-standardize", "--out", "run"]  # fmt: skip
    assert main(argv) == 0
    summary = _summary("run")
    assert summary["classes"] == ["cat", "dog", "emu"] and summary["test_accuracy"] > 0.8
    assert main(["predict", "run", "--data", "zoo.csv", "--out", "p.parquet"]) == 0
    predicted = pq.read_table("p.parquet").to_pydict()
    assert set(predicted["predicted_animal"]) <= {"cat", "dog", "emu"} and len(predicted["predicted_animal"]) == 300
    np.testing.assert_allclose(
        np.add.reduce([predicted[f"probability_{n}"] for n in ("cat", "dog", "emu")]), 1.0, rtol=1e-5
    )
    capsys.readouterr()
    assert main(["evaluate", "run", "--data", "zoo.csv"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "dog" in out
    assert json.loads(Path("run/evaluation.json").read_text())["classes"] == ["cat", "dog", "emu"]


def _one_line_exit_2(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not Path("run").exists() and not list(Path(".").glob("runs/*"))


@pytest.mark.parametrize(
    "content,extra,fragment",
    [
        (None, [], "does not exist"),
        ("a,y\n", [], "has columns but no rows"),
        ("a,y\n1,2\n3,4\n", ["--target", "price"], "price"),
        ("a,s,y\n1,x,2\n3,z,4\n", [], "--categorical s"),
        ("a,y\n1,2\n,4\n", [], "row 2"),
        ("a,a,y\n1,2,3\n", [], "duplicate"),
    ],
    ids=["missing", "header-only", "no-such-target", "string-feature", "empty-cell", "duplicate-columns"],
)
def test_bad_tables_print_one_line_and_leave_nothing(capsys, content, extra, fragment):
    if content is not None:
        Path("t.csv").write_text(content)
    argv = ["train", "linreg", "--data", "t.csv", "--target", "y", *extra, "--out", "run"]
    if "--target" in extra:
        argv = ["train", "linreg", "--data", "t.csv", *extra, "--out", "run"]
    _one_line_exit_2(capsys, argv, fragment)


def test_drop_missing_drops_and_says_how_many(capsys):
    Path("t.csv").write_text("a,y\n" + "".join(f"{i},{2 * i}\n" for i in range(20)) + ",5\n7,\n")
    argv = ["train", "linreg", "--data", "t.csv", "--target", "y", "--solver", "closed-form", "--drop-missing"]
    assert main([*argv, "--out", "run"]) == 0
    assert "dropped 2 rows" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["train", "linreg", "--target", "y"], "--target needs --data"),
        (["train", "linreg", "--data", "t.csv"], "--data needs --target"),
        (["train", "softmax", "--data", "t.csv", "--target", "y", "--stream", "--val-fraction", "0.2"],
         "--stream trains with minibatches"),
        (["train", "softmax", "--data", "one.csv", "--target", "y"], "class"),
        (["train", "linreg", "--data", "t.csv", "--target", "y", "--stream", "--impl", "manual"], "--impl concise"),
    ],
)
def test_bad_flags_print_one_line(capsys, argv, fragment):
    Path("t.csv").write_text("a,y\n1,0\n2,1\n3,0\n4,1\n")
    Path("one.csv").write_text("a,y\n1,0\n2,0\n3,0\n")
    _one_line_exit_2(capsys, [*argv, "--out", "run"], fragment)


def test_predict_refuses_unseen_categories_and_missing_columns(capsys):
    Path("t.csv").write_text("a,c,y\n" + "".join(f"{i},{'red' if i % 2 else 'blue'},{i}\n" for i in range(20)))
    argv = ["train", "linreg", "--data", "t.csv", "--target", "y", "--categorical", "c", "--solver", "closed-form"]
    assert main([*argv, "--out", "run"]) == 0
    capsys.readouterr()
    Path("new.csv").write_text("a,c\n1,green\n")
    assert main(["predict", "run", "--data", "new.csv"]) == 2
    err = capsys.readouterr().err
    assert ("green" in err and "'c'" in err) or "c" in err
    Path("short.csv").write_text("a\n1\n")
    assert main(["predict", "run", "--data", "short.csv"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'c'" in err
    assert not Path("run/predictions.csv").exists()
    assert not [name for name in os.listdir("run") if name.startswith(".")]  # no temporary file left


def _zoo(path: Path, n: int = 400) -> Path:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(n, 3))
    label = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return _write(pa.table({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "label": label}), path)


@pytest.mark.parametrize("name", ["zoo.csv", "zoo.parquet"])
def test_streamed_softmax_trains_and_predicts_like_the_in_memory_one(name, capsys):
    path = _zoo(Path(name))
    argv = ["train", "softmax", "--data", str(path), "--target", "label", "--standardize", "--lr", "0.5",
            "--epochs", "15", "--batch-size", "32"]  # fmt: skip
    assert main([*argv, "--stream", "--out", "streamed"]) == 0
    assert main([*argv, "--out", "memory"]) == 0
    streamed, memory = _summary("streamed"), _summary("memory")
    assert streamed["classes"] == memory["classes"] == ["0", "1", "2"]
    assert streamed["test_accuracy"] > 0.75 and memory["test_accuracy"] > 0.75  # (each on its own held-out rows)
    for run in ("streamed", "memory"):
        assert main(["evaluate", run, "--data", str(path)]) == 0
    whole = [json.loads(Path(run, "evaluation.json").read_text())["accuracy"] for run in ("streamed", "memory")]
    assert abs(whole[0] - whole[1]) < 0.03  # on the same 400 rows the two fits agree
    assert main(["predict", "streamed", "--data", str(path), "--out", "p.csv"]) == 0
    assert len(pacsv.read_csv("p.csv")) == 400


def test_a_streamed_fit_resumes_exactly(tmp_path):
    from linear_nets.pipeline.config import SoftmaxConfig
    from linear_nets.pipeline.fit import fit_softmax
    from linear_nets.pipeline.recorder import RunRecorder
    from linear_nets.pipeline.runs import Run
    from linear_nets.pipeline.tables import StreamedTable, TableOptions
    from linear_nets.training import Callback

    class StopAfter(Callback):
        def on_epoch_end(self, record):
            return record.epoch >= 2

    path = _zoo(tmp_path / "zoo.parquet")
    config = SoftmaxConfig(impl="manual", lr=0.3, epochs=4, batch_size=32, standardize=True, schedule="cosine")

    def fit(name, *callbacks, resume=False):
        table = StreamedTable(TableOptions(str(path), "label", stream=True), seed=0, task="classification")
        run = Run.open(tmp_path / name) if resume else Run.create("softmax", {"config": {}}, out=tmp_path / name)
        return fit_softmax(config, table, [RunRecorder(run, resume=resume), *callbacks])

    straight = fit("straight")
    fit("interrupted", StopAfter())
    resumed = fit("interrupted", resume=True)
    for key, tensor in straight.model.state_tensors().items():
        assert torch.equal(resumed.model.state_tensors()[key], tensor), key
    assert resumed.test_accuracy == straight.test_accuracy


def test_fewer_rows_than_features_warns_for_sgd_and_the_closed_form_is_minimum_norm(capsys):
    rng = np.random.default_rng(3)
    columns = {f"x{i}": rng.normal(size=6) for i in range(8)}
    _write(pa.table({**columns, "y": rng.normal(size=6)}), Path("wide.csv"))
    base = ["train", "linreg", "--data", "wide.csv", "--target", "y", "--test-fraction", "0"]
    assert main([*base, "--out", "sgd"]) == 0
    assert "6 training rows for 8 features" in capsys.readouterr().err
    assert main([*base, "--solver", "closed-form", "--out", "exact"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "minimum-norm" in err


def test_predictions_go_to_csv_or_parquet_only_and_the_name_is_checked_first(capsys):
    Path("t.csv").write_text("a,y\n" + "".join(f"{i},{2 * i}\n" for i in range(10)))
    assert main(["train", "linreg", "--data", "t.csv", "--target", "y", "--solver", "closed-form", "--out", "run"]) == 0
    capsys.readouterr()
    assert main(["predict", "run", "--data", "t.csv", "--out", "p.txt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "write predictions to a .csv or .parquet file" in err
    assert not Path("p.txt").exists() and not list(Path(".").glob(".p.txt*"))
