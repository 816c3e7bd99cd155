"""What the model learned, shown: `evaluate`'s pictures and numbers, `report`'s HTML page (in a real headless
Chromium too), and `runs`' listing, on small look-alike data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from linear_nets.cli import main

SOFTMAX = ["train", "softmax", "--epochs", "2", "--batch-size", "16", "--threads", "1"]
HEADINGS_SOFTMAX = ["Config", "Summary", "Curves", "What each class's weights look for", "Its most confident mistakes",
                    "Scores per class", "Calibration", "Confusion matrix"]  # fmt: skip


@pytest.fixture
def runs(install_fake_fashion_mnist, tmp_path, capsys):
    """Three softmax runs (an lr sweep), a synthetic linreg run and a linreg run on a table, under tmp_path/runs."""
    data = install_fake_fashion_mnist()
    for lr in ("0.05", "0.1", "0.2"):
        assert main([*SOFTMAX, "--lr", lr, "--data-dir", str(data), "--out", f"runs/sm-{lr}"]) == 0
    assert main(["train", "linreg", "--out", "runs/lr"]) == 0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = X @ [1.5, -2.0] + 0.3 + 0.1 * rng.normal(size=60)
    table = tmp_path / "houses.csv"
    table.write_text("area,rooms,price\n" + "".join(f"{a},{r},{p}\n" for (a, r), p in zip(X, y, strict=True)))
    assert main(["train", "linreg", "--data", str(table), "--target", "price", "--solver", "closed-form",
                 "--out", "runs/lr-table"]) == 0  # fmt: skip
    capsys.readouterr()
    return tmp_path / "runs"


def external_references(page: str) -> list[str]:
    """Every src/href/url() that points outside the file (data: URIs and #fragments stay inside)."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)""", page)
    return [u for pair in found for u in pair if u and not u.startswith(("data:", "#"))]


# --- evaluate -------------------------------------------------------------------------------------------------------


def test_evaluate_writes_the_pictures_and_the_scores_per_class_and_the_calibration(runs, capsys):
    run = runs / "sm-0.1"
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "precision  recall" in out and "expected calibration error (15 bins)" in out
    for name in ("confusion", "weights", "mistakes", "per_class", "reliability"):
        assert (run / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((run / "evaluation.json").read_text())
    confusion = np.array(result["confusion"])
    assert sorted(result["per_class"]) == sorted(result["classes"])  # (JSON written with sorted keys)
    for k, name in enumerate(result["classes"]):  # recall is the class's accuracy: its diagonal over its row
        scores = result["per_class"][name]
        assert scores["support"] == confusion[k].sum()
        assert scores["recall"] == pytest.approx(confusion[k, k] / confusion[k].sum(), abs=1e-6)
    assert 0 <= result["expected_calibration_error"] <= 1
    assert sum(result["calibration"]["counts"]) == result["n"]


def test_predictions_show_each_probability(runs):
    from linear_nets.plotting import show_predictions

    fig = show_predictions(np.zeros((2, 28, 28)), ["bag", "coat"], ["bag", "shirt"], probabilities=[0.91, 0.4])
    assert [ax.get_title() for ax in fig.axes] == ["bag\nbag 91%", "coat\nshirt 40%"]
    assert fig.axes[1].title.get_color() == "red"


def test_a_table_classifier_s_weights_are_a_heat_map_with_the_feature_names():
    from linear_nets.plotting import plot_class_weights

    fig = plot_class_weights(np.arange(6.0).reshape(3, 2) - 2, ["no", "yes"], feature_names=["age", "income", "x"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["age", "income", "x"]
    image = ax.get_images()[0]
    assert image.get_clim() == (-3.0, 3.0)  # centred on 0: white is no weight


# --- report ---------------------------------------------------------------------------------------------------------


def test_report_of_a_softmax_run_shows_what_it_learned_in_one_self_contained_file(runs, capsys):
    assert main(["report", str(runs / "sm-0.1"), "--out", "one.html"]) == 0
    assert capsys.readouterr().out == "wrote one.html\n"
    page = Path("one.html").read_text()
    for heading in HEADINGS_SOFTMAX:
        assert f"<h2>{heading}</h2>" in page
    assert page.count('<figure class="weight">') == 10
    assert '<div class="grid" id="mistakes">' in page
    assert page.count("<tr>") > 20 and "<script" not in page
    assert external_references(page) == []


def test_report_of_linear_regressions_shows_coefficients_and_residual_plots(runs):
    assert main(["report", str(runs / "lr-table"), "--out", "table.html"]) == 0
    page = Path("table.html").read_text()
    assert re.search(r"<td>area</td><td class=\"num\">1\.5\d*</td>", page)
    assert "<td>intercept</td>" in page and 'id="fig-residuals"' in page
    assert main(["report", str(runs / "lr"), "--out", "synthetic.html"]) == 0
    page = Path("synthetic.html").read_text()
    assert "<td>w1</td>" in page and "1000 training rows" in page and 'id="fig-residuals"' in page


def test_the_coefficient_table_shows_the_least_squares_columns_when_the_summary_has_them():
    from linear_nets.pipeline.report import coefficient_rows

    summary = {"coefficients": {"a": 1.0, "intercept": 2.0}, "standard_errors": {"a": 0.1, "intercept": 0.2},
               "t_values": {"a": 10.0, "intercept": 10.0}, "p_values": {"a": 1e-5, "intercept": 2e-5},
               "conf_int": {"a": [0.8, 1.2], "intercept": [1.6, 2.4]}, "conf_level": 0.95}  # fmt: skip
    header, rows = coefficient_rows(summary)
    assert header == ["", "coefficient", "std error", "t", "P>|t|", "[0.025", "0.975]"]
    assert rows[0] == ["a", "1", "0.1", "10", "1e-05", "0.8", "1.2"]
    header, _ = coefficient_rows(summary | {"cov_type": "HC3"})  # a robust covariance: normal tests
    assert header == ["", "coefficient", "std error", "z", "P>|z|", "[0.025", "0.975]"]
    header, rows = coefficient_rows({"coefficients": {"a": 1.0}, "intercept": 2.0})  # before the summary landed
    assert header == ["", "coefficient"] and rows == [["a", "1"], ["intercept", "2"]]


def test_report_compares_runs_of_one_model(runs):
    paths = [str(runs / f"sm-{lr}") for lr in ("0.05", "0.1", "0.2")]
    assert main(["report", *paths, "--out", "sweep.html"]) == 0
    page = Path("sweep.html").read_text()
    table = page[page.index('<table class="comparison">') :]
    table = table[: table.index("</table>")]
    assert "<th>lr</th>" in table and "<th>test acc</th>" in table and table.count("<tr>") == 4
    assert "<th>batch_size</th>" not in table  # the same in every run: said once, below the table
    assert 'id="fig-curves"' in page


@pytest.mark.parametrize("case", ["models", "corrupt", "missing", "extension", "twice", "directory"])
def test_report_refuses_in_one_line_and_leaves_the_previous_file(runs, capsys, case):
    Path("report.html").write_text("previous")
    if case == "corrupt":
        (runs / "sm-0.1" / "config.json").write_text("{")
    argv = {"models": [str(runs / "sm-0.1"), str(runs / "lr")], "corrupt": [str(runs / "sm-0.1")],
            "missing": [str(runs / "nope")], "extension": [str(runs / "lr"), "--out", "r.pdf"],
            "twice": [str(runs / "lr"), str(runs / "lr")],
            "directory": [str(runs / "lr"), "--out", "no/r.html"]}[case]  # fmt: skip
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ")
    assert {"models": "runs of one model", "corrupt": "is corrupt", "missing": "does not exist",
            "extension": "name it .html", "twice": "report: a run is named twice",
            "directory": "--out no/r.html: directory no does not exist"}[case] in err  # fmt: skip
    assert Path("report.html").read_text() == "previous" and not Path("r.pdf").exists()
    assert not [p for p in Path().iterdir() if p.name.startswith(".report")]  # no temporary file left


def test_report_of_an_interrupted_run_says_what_is_missing(runs, capsys):
    run = runs / "sm-0.2"
    (run / "summary.json").unlink()
    (run / "model.safetensors").unlink()
    old = time.time() - 3600
    for p in [run, *run.iterdir()]:
        os.utime(p, (old, old))
    assert main(["report", str(run), "--out", "partial.html"]) == 0
    err = capsys.readouterr().err
    assert "note: " in err and "no trained model yet (interrupted, last saved epoch 2 of 2)" in err
    page = Path("partial.html").read_text()
    assert '<p class="missing">' in page and 'id="fig-curves"' in page


# --- runs -----------------------------------------------------------------------------------------------------------


def test_runs_lists_each_run_newest_first_with_its_state(runs, capsys):
    (runs / "sm-0.05" / "summary.json").unlink()  # interrupted an hour ago ...
    old = time.time() - 3600
    for p in [runs / "sm-0.05", *(runs / "sm-0.05").iterdir()]:
        os.utime(p, (old, old))
    (runs / "sm-0.2" / "summary.json").unlink()  # ... and one still writing
    (runs / "foreign").mkdir()
    (runs / "foreign" / "config.json").write_text('{"format": "something else"}')
    assert main(["runs", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "DATA", "IMPL", "TEST", "STATE", "STARTED", "CONFIG"]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert "interrupted, last saved epoch 2 of 2" in by_name["sm-0.05"]
    assert "running (2 of 2 epochs done)" in by_name["sm-0.2"]
    assert "finished" in by_name["sm-0.1"] and "test acc" in by_name["sm-0.1"] and "--lr 0.1" in by_name["sm-0.1"]
    assert "houses.csv" in by_name["lr-table"] and "synthetic" in by_name["lr"]
    assert "unreadable: " in by_name["foreign"] and "not a linear-nets run directory" in by_name["foreign"]
    assert main(["runs", str(runs), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed][:5] == ["lr-table", "lr", "sm-0.2", "sm-0.1", "sm-0.05"]  # newest first
    assert {r["name"]: r["state"] for r in listed}["sm-0.05"] == "interrupted"
    assert {r["name"]: r["metric"] for r in listed}["sm-0.1"]["name"] == "test_accuracy"


def test_runs_names_a_corrupt_metrics_line_and_a_summary_that_is_not_an_object(runs, capsys):
    (runs / "sm-0.1" / "metrics.jsonl").write_text('{"epoch": 1}\n[1]\n')
    (runs / "sm-0.2" / "summary.json").write_text("[]")
    assert main(["runs", str(runs), "--json"]) == 0
    problems = {r["name"]: r["problems"] for r in json.loads(capsys.readouterr().out)}
    metrics = runs / "sm-0.1" / "metrics.jsonl"
    assert problems["sm-0.1"] == [f"metrics {metrics} is corrupt at line 2: not a JSON object"]
    assert problems["sm-0.2"] == [f"run summary {runs / 'sm-0.2' / 'summary.json'} is not a JSON object"]


def test_runs_on_a_missing_directory_is_one_line(capsys):
    assert main(["runs", "nowhere"]) == 2
    assert capsys.readouterr().err == "linear-nets: error: nowhere is not a directory\n"


# --- in a real browser --------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--host-resolver-rules=MAP * ~NOTFOUND"]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):  # scripts/setup.sh dev installs it: missing in CI is a failure, not a skip
            pytest.fail("chromium is not installed (scripts/setup.sh dev installs Debian's chromium)")
        pytest.skip("chromium is not installed (scripts/setup.sh dev installs it)")
    return found


def open_in_chromium(page: Path, tmp_path: Path, *action: str) -> tuple[str, list[str]]:
    """Open `page` offline in a fresh profile; return what it printed and the URLs the page itself asked for (the
    net log's requests whose initiator is a page: the browser's own background requests have none)."""
    netlog = tmp_path / f"net-{time.monotonic_ns()}.json"
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    argv = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--log-net-log={netlog}", *action]
    result = subprocess.run([*argv, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    by_page = [e for e in log["events"] if e["type"] == start and "initiator" in e.get("params", {})]
    asked = [e["params"]["url"] for e in by_page if e["params"]["initiator"] != "not an origin"]
    return result.stdout, asked


@pytest.mark.slow
def test_the_reports_render_in_headless_chromium_offline(runs, tmp_path):
    from PIL import Image

    pages = {"softmax": [runs / "sm-0.1"], "linreg": [runs / "lr-table"],
             "compared": [runs / f"sm-{lr}" for lr in ("0.05", "0.1", "0.2")]}  # fmt: skip
    # the check itself sees a page that loads outside URLs
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<html><body><img src="http://example.invalid/x.png"></body></html>')
    assert open_in_chromium(leaky, tmp_path, "--dump-dom")[1] == ["http://example.invalid/x.png"]
    for name, paths in pages.items():
        out = tmp_path / f"{name}.html"
        assert main(["report", *map(str, paths), "--out", str(out)]) == 0
        dom, asked = open_in_chromium(out, tmp_path, "--dump-dom")
        assert asked == [], f"{name}: the page asked for {asked}"
        headings = re.findall(r"<h2>(.*?)</h2>", dom)
        if name == "softmax":
            assert headings == HEADINGS_SOFTMAX
            assert len(re.findall(r'<figure class="weight"><img [^>]*src="data:image/png;base64,', dom)) == 10
        elif name == "linreg":
            assert headings == ["Config", "Curves", "Coefficients", "Residuals"]
            assert "<td>rooms</td>" in dom and "<svg" in dom
        else:
            assert '<table class="comparison">' in dom and dom.count("<svg") == 1
        shot = tmp_path / f"{name}.png"
        open_in_chromium(out, tmp_path, "--window-size=1200,1600", f"--screenshot={shot}")
        pixels = np.asarray(Image.open(shot).convert("L"))
        assert pixels.shape == (1600, 1200)
        assert (pixels < 200).mean() > 0.01 and pixels.std() > 10, f"{name}: the screenshot is blank"


# --- TensorBoard ----------------------------------------------------------------------------------------------------


def test_tensorboard_events_hold_the_epochs_the_weight_pictures_and_the_config(install_fake_fashion_mnist, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = install_fake_fashion_mnist()
    assert main([*SOFTMAX, "--epochs", "3", "--tensorboard", "--data-dir", str(data), "--out", "tb"]) == 0
    events = EventAccumulator("tb/tensorboard", size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    rows = [json.loads(line) for line in Path("tb/metrics.jsonl").read_text().splitlines()]
    for tag, field in (("loss/train", "train_loss"), ("accuracy/train", "train_accuracy"),
                       ("accuracy/test", "test_accuracy")):  # fmt: skip
        assert [(e.step, e.value) for e in events.Scalars(tag)] == [
            (r["epoch"], pytest.approx(r[field], rel=1e-6)) for r in rows  # stored as float32
        ]
    classes = json.loads(Path("tb/summary.json").read_text())["classes"]
    assert sorted(events.Tags()["images"]) == sorted(f"weights/{c}" for c in classes)
    picture = events.Images("weights/trouser")
    assert [p.step for p in picture] == [1, 2, 3] and (picture[0].width, picture[0].height) == (28, 28)
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["lr"].number_value == 0.1 and hparams["impl"].string_value == "manual"
    assert json.loads(Path("tb/config.json").read_text())["options"]["tensorboard"] is True


def test_tensorboard_without_the_package_is_one_line_and_no_run(install_fake_fashion_mnist, monkeypatch, capsys):
    import sys

    data = install_fake_fashion_mnist()
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it raises ImportError
    assert main([*SOFTMAX, "--tensorboard", "--data-dir", str(data), "--out", "tb"]) == 2
    assert capsys.readouterr().err == ("linear-nets: error: --tensorboard needs the tensorboard package: "
                                       "pip install 'linear-nets[tensorboard]'\n")  # fmt: skip
    assert not Path("tb").exists()


def test_linreg_tensorboard_events_hold_the_losses_the_coefficients_and_the_config(capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    def events(run: str) -> EventAccumulator:
        accumulator = EventAccumulator(f"{run}/tensorboard", size_guidance={"scalars": 0})
        accumulator.Reload()
        return accumulator

    assert main(["train", "linreg", "--epochs", "3", "--tensorboard", "--out", "sgd"]) == 0
    sgd = events("sgd")
    rows = [json.loads(line) for line in Path("sgd/metrics.jsonl").read_text().splitlines()]
    assert [(e.step, e.value) for e in sgd.Scalars("loss/train")] == [
        (r["epoch"], pytest.approx(r["train_loss"], rel=1e-6)) for r in rows  # stored as float32
    ]
    summary = json.loads(Path("sgd/summary.json").read_text())
    assert sgd.Scalars("coefficients/w1")[0].value == pytest.approx(summary["estimated_w"][0], rel=1e-6)
    content = sgd.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["lr"].number_value == pytest.approx(0.03) and hparams["impl"].string_value == "scratch"
    assert main(["train", "linreg", "--solver", "closed-form", "--tensorboard", "--out", "ls"]) == 0
    least_squares = events("ls")
    summary = json.loads(Path("ls/summary.json").read_text())
    assert least_squares.Scalars("std_errors/x1")[0].value == pytest.approx(summary["standard_errors"]["x1"], rel=1e-6)
    assert "loss/train" not in least_squares.Tags()["scalars"]  # no epochs: the closed form has no curve


@pytest.mark.parametrize("model", ["linreg", "softmax"])
def test_report_of_a_table_run_whose_table_changed_leaves_out_what_needs_its_rows(tmp_path, capsys, model):
    # The rows are found again in the file the run recorded, encoded by the run's own schema: a table that changed
    # since (a new category here, so one more one-hot column) is said in one line, and the rest of the page stays
    table = tmp_path / "t.csv"
    rows = [f"{i},{'ab'[i % 2]},{2 * i + (i % 2)},{i % 3}\n" for i in range(40)]
    table.write_text("x,c,y,k\n" + "".join(rows))
    train = (["train", "linreg", "--target", "y", "--solver", "closed-form"] if model == "linreg"
             else ["train", "softmax", "--target", "k", "--epochs", "2", "--batch-size", "8", "--threads", "1"])
    run = tmp_path / "run"
    assert main([*train, "--data", str(table), "--categorical", "c", "--out", str(run)]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "before.html")]) == 0
    before = (tmp_path / "before.html").read_text()
    assert ('id="fig-residuals"' in before) if model == "linreg" else ("Scores per class" in before)
    table.write_text("x,c,y,k\n" + "".join(rows) + "40,z,90,1\n")
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "after.html")]) == 0
    page = (tmp_path / "after.html").read_text()
    assert "has changed since the run was trained" in page
    assert 'id="fig-residuals"' not in page and "Scores per class" not in page
    assert "<h2>Config</h2>" in page and ("<h2>Coefficients</h2>" if model == "linreg" else "<h2>Summary</h2>") in page
