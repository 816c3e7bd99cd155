"""The one pipeline: config validation from the table, warm starts, linear regression's fit, and the CLI start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from linear_nets.data.synthetic import synthetic_data
from linear_nets.errors import ConfigError, DataError, flag_message
from linear_nets.pipeline.config import LinregConfig, Param, SoftmaxConfig, SyntheticData, validate
from linear_nets.pipeline.fit import Dataset, fit_linreg, fit_softmax


def _blobs(n=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=gen)
    return Dataset((X, (X[:, 0] + X[:, 1] > 0).long()), (X, (X[:, 0] + X[:, 1] > 0).long()))


@pytest.mark.parametrize("cls", [SoftmaxConfig, LinregConfig, SyntheticData])
def test_each_field_is_declared_once_with_its_param_and_its_default_is_valid(cls):
    import dataclasses

    params = {p.name: p for p in cls.PARAMS}  # made from the fields themselves (`option`, `declared`)
    assert list(params) == [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        assert f.metadata["param"]["help"] == params[f.name].help
    validate(cls())


@pytest.mark.parametrize(
    "param,value,message",
    [
        (Param("lr", float, "", low=0, low_open=True), True, "lr must be a finite number > 0, got True"),
        (Param("epochs", int, "", low=1), 2.0, "epochs must be an integer >= 1, got 2.0"),
        (Param("impl", str, "", choices=("a", "b")), "c", "impl must be one of a, b, got c"),
        (Param("impl", str, "", choices=("a", "b")), 3, "impl must be one of a, b, got 3"),
        (Param("lr", float, "", low=0), "0.3", "lr must be a finite number >= 0, got '0.3'"),
        (Param("true_w", tuple, ""), (1.0, float("nan")),
         "true_w must be a non-empty list of finite numbers, got 1,nan"),
        (Param("v", float, "", low=0, high=1, low_open=True, high_open=True), float("nan"),
         "v must be a finite number > 0 and < 1, got nan"),
    ],
)  # fmt: skip
def test_a_value_out_of_the_table_names_the_field(param, value, message):
    with pytest.raises(ConfigError) as exc:
        param.check(value)
    assert str(exc.value) == message
    assert exc.value.fields == (param.name,)  # the command line writes it as the flag
    assert flag_message(exc.value) == message.replace(param.name, f"--{param.name.replace('_', '-')}", 1)


@pytest.mark.parametrize("impl", ["scratch", "manual", "concise"])
@pytest.mark.parametrize("standardize", [False, True])
def test_a_warm_start_continues_where_the_first_fit_stopped(impl, standardize):
    data = _blobs()
    config = SoftmaxConfig(impl=impl, lr=0.3, epochs=2, batch_size=20, standardize=standardize)
    first = fit_softmax(config, data)
    again = fit_softmax(config, data, init=first.model.state_tensors())
    assert again.history.epochs[0].train_loss < first.history.epochs[0].train_loss
    if standardize:  # the statistics travel with the model, not refitted
        assert torch.equal(again.model.state_tensors()["mean"], first.model.state_tensors()["mean"])
    with pytest.raises(DataError, match="init"):
        fit_softmax(config, data, init={"W": torch.zeros(2, 2)})


@pytest.mark.parametrize("impl", ["scratch", "manual", "concise"])
def test_fit_linreg_sgd_and_warm_start(impl):
    X, y = synthetic_data([2, -3.4], 4.2, 500, generator=torch.Generator().manual_seed(0))
    config = LinregConfig(impl=impl, epochs=1, lr=0.03)
    first = fit_linreg(config, (X, y))
    again = fit_linreg(config, (X, y), init=(first.w, first.b))
    assert again.history.epochs[0].train_loss < first.history.epochs[0].train_loss
    exact = fit_linreg(LinregConfig(solver="closed-form"), (X, y))
    assert (again.w - exact.w).abs().max() < (first.w - exact.w).abs().max()  # it went on from there
    assert first.history.column("epoch") == [1]


def test_help_and_data_path_do_not_import_torch(tmp_path):
    code = (
        "import sys\nfrom linear_nets.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    refused = [["plot", "regression", "--seed", "-1", "--out", str(tmp_path / "r.png")],  # bad arguments cost nothing
               ["plot", "vectorization", "--n", "0", "--out", str(tmp_path / "v.png")]]  # fmt: skip
    for argv in (["--help"], ["data", "path"], ["train", "softmax", "--help"], *refused):
        result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
        assert result.stdout.strip().splitlines()[-1] == "False", argv


def test_a_table_is_standardised_like_scikit_learn_and_images_keep_their_floor():
    from sklearn.preprocessing import StandardScaler

    gen = torch.Generator().manual_seed(0)
    X = torch.randn(100, 3, generator=gen) * torch.tensor([1e-3, 1.0, 1e3])
    X[:, 0] += 5.0
    y = (X[:, 1] > 0).long()
    model = fit_softmax(SoftmaxConfig(impl="manual", standardize=True, epochs=1), Dataset((X, y))).model
    scaler = StandardScaler().fit(X.double().numpy())
    torch.testing.assert_close(model.std.double(), torch.tensor(scaler.scale_), rtol=1e-4, atol=0)
    images = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
    model = fit_softmax(SoftmaxConfig(impl="manual", standardize=True, epochs=1),
                        Dataset((images, torch.arange(10) % 2))).model  # fmt: skip
    assert torch.equal(model.std, torch.full((4,), 0.01))


def test_a_stream_moves_to_the_device_batch_by_batch_and_a_scored_split_at_once():
    """A streamed table on a device is moved as it is read: nothing is read until the fit iterates, and every epoch
    reads afresh (gathering it into a list would hold the whole table in memory and fix one epoch's order)."""
    from linear_nets.pipeline.fit import _to

    reads = []

    class Stream:
        def __iter__(self):
            reads.append(1)
            yield torch.zeros(2, 3), torch.zeros(2)

    moved = _to(Stream(), torch.device("cpu"))
    assert reads == []
    assert [X.shape for X, _ in moved] == [X.shape for X, _ in moved] == [(2, 3)] and reads == [1, 1]
    split = [(torch.ones(4, 3), torch.ones(4))]
    assert isinstance(_to(split, torch.device("cpu")), list) and _to(None, torch.device("cpu")) is None
