"""--device: cpu by default, cuda only where present (one clear line otherwise), auto picks what there is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from linear_nets.cli import main
from linear_nets.errors import ConfigError
from linear_nets.pipeline.fit import resolve_device

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def fixture_data(install_fake_fashion_mnist):
    return install_fake_fashion_mnist()


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line_and_no_run_directory(fixture_data, capsys):
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    assert main(["train", "softmax", "--epochs", "1", "--device", "cuda", "--data-dir", str(fixture_data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device cuda" in err
    assert sorted(os.listdir(".")) == ["data"]


@pytest.mark.parametrize("impl", ["scratch", "manual", "concise"])
@pytest.mark.parametrize(
    "device", ["auto", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="no GPU"))]
)
def test_train_and_evaluate_on_a_device(fixture_data, capsys, impl, device):
    """Where CUDA exists this trains there; a CPU machine runs the same path with --device auto."""
    argv = ["train", "softmax", "--impl", impl, "--epochs", "3", "--batch-size", "16", "--data-dir", str(fixture_data)]
    assert main([*argv, "--device", device, "--out", "run"]) == 0
    summary = json.loads(Path("run/summary.json").read_text())
    assert main(["evaluate", "run", "--device", device, "--data-dir", str(fixture_data)]) == 0
    evaluation = json.loads(Path("run/evaluation.json").read_text())
    assert evaluation["test_accuracy"] == pytest.approx(summary["final"]["test_accuracy"])
    # a CPU run of the same seed agrees with the device run to float tolerance
    assert main([*argv, "--device", "cpu", "--out", "cpu-run"]) == 0
    cpu_summary = json.loads(Path("cpu-run/summary.json").read_text())
    assert cpu_summary["final"]["train_loss"] == pytest.approx(summary["final"]["train_loss"], rel=1e-4)
    capsys.readouterr()
