"""Synthetic data, minibatches, and linear regression from scratch, by hand and concisely (d2l 3.2, 3.3)."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

from linear_nets.concise import linear_regression as concise
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.synthetic import data_iter, load_array, synthetic_data
from linear_nets.errors import ConfigError, DataError, TrainingDiverged
from linear_nets.losses import get_loss
from linear_nets.manual import linear_regression as manual
from linear_nets.scratch import linear_regression as scratch

IMPLS = {"scratch": scratch, "manual": manual, "concise": concise}
TRUE_W, TRUE_B = torch.tensor([2.0, -3.4]), 4.2
# The 3.2 recipe. Huber and L1 take steps of at most lr while the residuals are large, so they need more
# steps to get from 0 to b = 4.2; L1's steps never shrink, so it also needs a smaller lr to settle within 0.01.
RECIPES = {
    "squared": {"lr": 0.03, "num_epochs": 3},
    "huber": {"lr": 0.03, "num_epochs": 5},
    "l1": {"lr": 0.01, "num_epochs": 10},
}


@pytest.fixture(scope="module")
def data():
    return synthetic_data(TRUE_W, TRUE_B, 1000, generator=torch.Generator().manual_seed(0))


# --- synthetic_data, data_iter, load_array -------------------------------------------------------------------


def test_synthetic_data_follows_the_model():
    X, y = synthetic_data(TRUE_W, TRUE_B, 20000, noise=0.1, generator=torch.Generator().manual_seed(1))
    assert X.shape == (20000, 2) and y.shape == (20000, 1) and X.dtype == torch.float32
    noise = y[:, 0] - (X @ TRUE_W + TRUE_B)
    assert abs(noise.std().item() - 0.1) < 0.005 and abs(noise.mean().item()) < 0.005
    assert abs(X.std().item() - 1) < 0.02
    X0, y0 = synthetic_data([1.0], 0.0, 5, noise=0.0)
    torch.testing.assert_close(y0[:, 0], X0[:, 0])


def test_synthetic_data_is_seeded():
    a = synthetic_data(TRUE_W, TRUE_B, 10, generator=torch.Generator().manual_seed(3))
    b = synthetic_data(TRUE_W, TRUE_B, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"true_w": ()}, "true_w must be a non-empty list of finite numbers"),
        ({"true_w": (1.0, float("nan"))}, "true_w must be a non-empty list of finite numbers"),
        ({"true_b": float("inf")}, "true_b must be a finite number"),
        ({"samples": 0}, "samples must be an integer >= 1"),
        ({"noise": -0.1}, "noise must be a finite number >= 0"),
    ],
)
def test_the_synthetic_problem_is_checked_by_its_config_not_by_the_formula(kwargs, fragment):
    from linear_nets.pipeline.config import SyntheticData, validate

    with pytest.raises(ConfigError, match=fragment):
        validate(SyntheticData(**kwargs))


def test_data_iter_visits_every_example_once_and_keeps_the_partial_batch():
    X, y = torch.arange(46.0).reshape(23, 2), torch.arange(23.0)
    batches = list(data_iter(5, X, y, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for _, b in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat([b for _, b in batches])
    assert sorted(seen.tolist()) == list(range(23)) and seen.tolist() != list(range(23))
    for Xb, yb in batches:
        torch.testing.assert_close(Xb[:, 0], 2 * yb)  # rows stay paired with their labels
    again = list(data_iter(5, X, y, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))


def test_load_array_shuffles_only_for_training():
    X, y = torch.arange(20.0).reshape(10, 2), torch.arange(10.0)
    train = load_array((X, y), 3, generator=torch.Generator().manual_seed(0))
    assert isinstance(train, ArrayLoader) and len(train) == 4
    order = torch.cat([b for _, b in train])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    assert torch.cat([b for _, b in train]).tolist() != order.tolist()  # a fresh order every epoch
    test = load_array((X, y), 3, is_train=False)
    assert torch.cat([b for _, b in test]).tolist() == list(range(10))


# --- the model pieces ---------------------------------------------------------------------------------------


def test_linreg_and_sgd():
    X = torch.tensor([[1.0, 2.0]])
    w, b = torch.tensor([[3.0], [4.0]]), torch.tensor([0.5])
    assert scratch.linreg(X, w, b).item() == 11.5
    w.requires_grad_(True)
    (scratch.linreg(X, w, b).sum() * 2).backward()  # grad = 2 * X
    scratch.sgd([w], lr=0.5, batch_size=2)
    torch.testing.assert_close(w.detach(), torch.tensor([[2.5], [3.0]]))
    assert torch.equal(w.grad, torch.zeros(2, 1))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("loss_name", ["squared", "l1", "huber"])
def test_hand_derived_gradients_match_autograd(seed, loss_name):
    g = torch.Generator().manual_seed(seed)
    n, d = torch.randint(1, 60, (2,), generator=g).tolist()
    X = torch.randn(n, d, dtype=torch.float64, generator=g)
    y = torch.randn(n, 1, dtype=torch.float64, generator=g)
    w = torch.randn(d, 1, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(1, dtype=torch.float64, generator=g, requires_grad=True)
    loss = get_loss(loss_name, delta=0.8, reduction="mean")
    loss(scratch.linreg(X, w, b), y).backward()
    with torch.no_grad():
        grad_w, grad_b = manual.linreg_grad(X, y, scratch.linreg(X, w, b), loss)
    for mine, auto in ((grad_w, w.grad), (grad_b, b.grad)):
        assert mine.shape == auto.shape
        assert (mine - auto).norm().item() <= 1e-10 * auto.norm().item() + 1e-15  # relative, unless the grad is 0


def test_hand_derived_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(11)
    X, y = torch.randn(30, 3, dtype=torch.float64, generator=g), torch.randn(30, 1, dtype=torch.float64, generator=g)
    theta = torch.randn(4, dtype=torch.float64, generator=g)
    for name in ("squared", "l1", "huber"):
        loss = get_loss(name, delta=0.8)

        def mean_loss(t, loss=loss):
            return loss(scratch.linreg(X, t[:3, None], t[3:]), y).item()

        grad_w, grad_b = manual.linreg_grad(X, y, scratch.linreg(X, theta[:3, None], theta[3:]), loss)
        h, numeric = 1e-6, torch.zeros(4, dtype=torch.float64)
        for i in range(4):
            e = torch.zeros(4, dtype=torch.float64)
            e[i] = h
            numeric[i] = (mean_loss(theta + e) - mean_loss(theta - e)) / (2 * h)
        torch.testing.assert_close(torch.cat([grad_w[:, 0], grad_b]), numeric, rtol=1e-6, atol=1e-8)


def test_manual_training_never_uses_autograd(data, monkeypatch):
    def no_backward(*args, **kwargs):
        raise AssertionError("manual training called backward()")

    monkeypatch.setattr(torch.autograd, "backward", no_backward)
    w0, b0 = manual.init_params(2)
    assert not w0.requires_grad and not b0.requires_grad
    w, b, _ = manual.fit(*data, num_epochs=1)
    assert not w.requires_grad and not b.requires_grad
    with pytest.raises(AssertionError, match="called backward"):  # the spy works: autograd code trips it
        scratch.fit(*data, num_epochs=1)


# --- training: the recipes, agreement between implementations, errors ----------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_the_book_recipe_recovers_w_and_b(data, impl):
    epochs = []
    w, b, losses = IMPLS[impl].fit(
        *data, lr=0.03, num_epochs=3, batch_size=10, seed=0, on_epoch_end=lambda e, loss: epochs.append((e, loss))
    )
    assert w.shape == (2,) and b.shape == ()
    assert (w - TRUE_W).abs().max() < 0.01 and abs(b.item() - TRUE_B) < 0.01
    assert [e for e, _ in epochs] == [1, 2, 3] and [loss for _, loss in epochs] == losses
    assert losses[0] > losses[1] > losses[2] and losses[2] < 1e-3  # noise² / 2 = 5e-5 is the floor


@pytest.mark.parametrize("loss_name", ["l1", "huber"])
@pytest.mark.parametrize("impl", IMPLS)
def test_every_loss_recovers_w_and_b(data, impl, loss_name):
    w, b, _ = IMPLS[impl].fit(*data, loss=loss_name, batch_size=10, seed=0, **RECIPES[loss_name])
    assert (w - TRUE_W).abs().max() < 0.01 and abs(b.item() - TRUE_B) < 0.01


@pytest.mark.parametrize("loss_name", ["squared", "l1", "huber"])
def test_the_three_implementations_agree_step_for_step(data, loss_name):
    # Same seed: same initialisation and the same minibatches, so only the gradient code differs.
    results = [m.fit(*data, loss=loss_name, huber_delta=0.5, num_epochs=2, seed=4) for m in IMPLS.values()]
    w0, b0, l0 = results[0]
    for w, b, losses in results[1:]:
        torch.testing.assert_close(w, w0, rtol=0, atol=1e-5)
        torch.testing.assert_close(b, b0, rtol=0, atol=1e-5)
        assert losses == pytest.approx(l0, rel=1e-3)


def test_huber_delta_is_used(data):
    _, _, small = scratch.fit(*data, loss="huber", huber_delta=0.1, num_epochs=1)
    _, _, large = scratch.fit(*data, loss="huber", huber_delta=10.0, num_epochs=1)
    assert small != large


def test_same_seed_same_result_other_seed_other_result(data):
    a = concise.fit(*data, num_epochs=1, seed=1)
    b = concise.fit(*data, num_epochs=1, seed=1)
    c = concise.fit(*data, num_epochs=1, seed=2)
    assert torch.equal(a[0], b[0]) and a[2] == b[2]
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("impl", IMPLS)
def test_a_diverging_learning_rate_raises_training_diverged(data, impl):
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as info:
        IMPLS[impl].fit(*data, lr=100.0, num_epochs=3)
    assert info.value.epoch == 1 and info.value.step == 100


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"loss": "hinge"}, "loss must be one of squared, l1, huber")],
)
def test_bad_arguments_name_the_argument(data, impl, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        IMPLS[impl].fit(*data, **kwargs)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be a finite number > 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"loss": "huber", "huber_delta": 0.0}, "huber_delta must be a finite number > 0"),
    ],
)
def test_a_fit_checks_its_ranges_once_by_the_config(data, impl, kwargs, fragment):
    from linear_nets.pipeline.config import LinregConfig
    from linear_nets.pipeline.fit import fit_linreg

    with pytest.raises(ConfigError, match=fragment):
        fit_linreg(LinregConfig(impl=impl, **kwargs), data)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_fit_checks_its_data_once_on_the_whole_tensors(data, impl):
    from linear_nets.pipeline.config import LinregConfig
    from linear_nets.pipeline.fit import fit_linreg

    X, y = data
    X_nan = X.clone()
    X_nan[7, 0] = float("nan")
    config = LinregConfig(impl=impl, epochs=1)
    with pytest.raises(DataError, match="features contain NaN or inf"):
        fit_linreg(config, (X_nan, y))
    with pytest.raises(DataError, match="labels have 999 values but features have 1000 rows"):
        fit_linreg(config, (X, y[:-1]))
    with pytest.raises(DataError, match=r"features must be a non-empty matrix \[n, d\]"):
        fit_linreg(config, (X[:, 0], y))


@pytest.mark.parametrize(
    "name",
    [
        "linear_nets.data.synthetic",
        "linear_nets.scratch.linear_regression",
        "linear_nets.manual.linear_regression",
        "linear_nets.concise.linear_regression",
    ],
)
def test_docstring_examples_run(name):
    assert doctest.testmod(importlib.import_module(name)).failed == 0
