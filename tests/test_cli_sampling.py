"""--sampling through the command line: the four ways of cutting an epoch into minibatches, end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from linear_nets.cli import main
from linear_nets.data.batches import SAMPLING_MODES
from linear_nets.pipeline.config import SAMPLING

MODES = ["shuffle", "shuffle-drop-last", "shuffle-fill", "with-replacement"]


def test_the_config_names_the_loaders_modes():
    assert SAMPLING == SAMPLING_MODES == tuple(MODES)


@pytest.mark.parametrize(
    "impl,mode",
    [("scratch", "shuffle-fill"), ("manual", "shuffle-drop-last"), ("concise", "with-replacement"),
     ("scratch", "with-replacement"), ("manual", "shuffle-fill"), ("concise", "shuffle-drop-last")],
)  # fmt: skip
def test_linreg_trains_with_each_mode_and_records_it(capsys, impl, mode):
    argv = ["train", "linreg", "--impl", impl, "--sampling", mode, "--samples", "995", "--out", "run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    w = [float(v) for v in re.search(r"^estimated w: \[(.*)\]$", out, re.M).group(1).split(",")]
    assert w == pytest.approx([2, -3.4], abs=0.02)
    assert json.loads(Path("run/config.json").read_text())["config"]["sampling"] == mode
    again = main([*argv[:-1], "again"])  # seeded: the same command, the same numbers
    assert again == 0 and capsys.readouterr().out.replace("again", "run") == out


@pytest.mark.parametrize("mode", MODES)
def test_softmax_trains_with_each_mode(install_fake_fashion_mnist, capsys, mode):
    data = install_fake_fashion_mnist(n_train=70)
    argv = ["train", "softmax", "--sampling", mode, "--epochs", "2", "--batch-size", "16", "--data-dir", str(data)]
    assert main([*argv, "--out", "run"]) == 0
    rows = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["train", "linreg", "--sampling", "random"], "--sampling must be one of shuffle, shuffle-drop-last"),
        (["train", "linreg", "--sampling", "shuffle-drop-last", "--batch-size", "2000"], "batch"),
        (["train", "softmax", "--sampling", "bootstrap"], "--sampling must be one of"),
    ],
)
def test_bad_sampling_is_one_line_and_exit_2(capsys, argv, fragment):
    assert main([*argv, "--out", "run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not Path("run").exists()
