"""The three implementations of softmax regression: same start, same gradients, same training, same refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from linear_nets.concise import softmax_regression as concise
from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import ConfigError, DataError, TrainingDiverged
from linear_nets.manual import softmax_regression as manual
from linear_nets.scratch import softmax_regression as scratch
from linear_nets.training import train

IMPLS = {"scratch": scratch.SoftmaxRegression, "manual": manual.SoftmaxRegression, "concise": concise.SoftmaxRegression}


def make_model(impl: str, num_inputs: int = 784, lr: float = 0.1, seed: int = 0):
    return IMPLS[impl](num_inputs, 10, lr=lr, generator=torch.Generator().manual_seed(seed))


def weights(model) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [d, q], b [q]) of any implementation, detached."""
    if isinstance(model, concise.SoftmaxRegression):
        return model.net[1].weight.detach().T, model.net[1].bias.detach()
    return model.W.detach(), model.b.detach()


def toy_images(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 "images" [n, 1, 28, 28] whose class shows in the mean brightness of a band of rows (learnable)."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=generator, dtype=torch.uint8)
    rows = (2 * y).tolist()
    for i, row in enumerate(rows):
        images[i, 0, row : row + 3] += 180
    return images, y


def test_init_params_is_the_books_and_seeded():
    W, b = scratch.init_params(784, 10, generator=torch.Generator().manual_seed(0))
    assert W.shape == (784, 10) and b.shape == (10,)
    assert W.requires_grad and b.requires_grad
    assert abs(W.std().item() - 0.01) < 0.0005 and abs(W.mean().item()) < 0.0005
    assert (b == 0).all()
    W2, _ = scratch.init_params(784, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(W, W2)


def test_all_three_start_from_the_same_weights_for_one_seed():
    starts = [weights(make_model(impl, seed=3)) for impl in IMPLS]
    for W, b in starts[1:]:
        assert torch.equal(W, starts[0][0]) and torch.equal(b, starts[0][1])
    assert not torch.equal(weights(make_model("manual", seed=4))[0], starts[0][0])


@pytest.mark.parametrize("impl", IMPLS)
def test_net_is_softmax_of_xw_plus_b(impl):
    model = make_model(impl)
    X = torch.rand(5, 1, 28, 28)
    W, b = weights(model)
    logits = X.reshape(5, 784).double() @ W.double() + b.double()
    out = model.net(X).detach().double()
    probs = out if impl == "scratch" else torch.softmax(out, dim=1)  # manual and concise return the logits
    torch.testing.assert_close(probs, torch.softmax(logits, dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_manual_gradients_equal_autograd_in_float64(seed):
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(32, 784, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 10, (32,), generator=generator)
    W = (0.5 * torch.randn(784, 10, generator=generator, dtype=torch.float64)).requires_grad_()
    b = torch.randn(10, generator=generator, dtype=torch.float64).requires_grad_()
    logits = X @ W + b
    F.cross_entropy(logits, y).backward()  # mean over the batch, as the manual gradient
    grad_W, grad_b = manual.gradients(X, y, logits.detach())
    assert (grad_W - W.grad).abs().max() <= 1e-10
    assert (grad_b - b.grad).abs().max() <= 1e-10


def test_manual_step_is_sgd_with_the_manual_gradient():
    model = make_model("manual", lr=0.5)
    X, y = torch.rand(16, 784), torch.randint(0, 10, (16,))
    W0, b0 = model.W.clone(), model.b.clone()
    logits = model.net(X)
    grad_W, grad_b = manual.gradients(X, y, logits)
    model.step(X, y, logits)
    torch.testing.assert_close(model.W, W0 - 0.5 * grad_W, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.b, b0 - 0.5 * grad_b, rtol=0, atol=1e-6)
    assert model.updater is model


def test_manual_weighted_gradients_equal_autograd_of_the_weighted_mean_in_float64():
    generator = torch.Generator().manual_seed(3)
    X = torch.rand(12, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=generator)
    w = torch.rand(12, generator=generator, dtype=torch.float64) * 3
    W = torch.randn(5, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    logits = X @ W + b
    (w * F.cross_entropy(logits, y, reduction="none")).mean().backward()
    grad_W, grad_b = manual.gradients(X, y, logits.detach(), w)
    # float64 sums of 12 terms of size ~1: a few ulps of 1 (2.2e-16 each), far below this bound
    torch.testing.assert_close(grad_W, W.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_b, b.grad, rtol=0, atol=1e-12)


def test_the_three_implementations_train_to_the_same_weights():
    images, y = toy_images()
    results = {}
    for impl in IMPLS:
        model = make_model(impl, lr=0.3)
        loader = ArrayLoader((images, y), batch_size=32, shuffle=True, seed=7)
        history = train(model.net, loader, None, model.loss, 3, model.updater)
        results[impl] = (weights(model), history.column("train_loss"))
    (W_ref, b_ref), losses_ref = results["scratch"]
    assert not torch.allclose(W_ref, weights(make_model("scratch"))[0])  # it did train
    assert losses_ref[-1] < losses_ref[0]
    for impl in ("manual", "concise"):
        (W, b), losses = results[impl]
        torch.testing.assert_close(W, W_ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(b, b_ref, rtol=0, atol=1e-5)
        assert losses == pytest.approx(losses_ref, rel=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_each_implementation_learns_a_separable_toy_problem(impl):
    images, y = toy_images(200)
    model = make_model(impl, lr=0.5)
    train_iter = ArrayLoader((images, y), batch_size=20, shuffle=True, seed=0)
    history = train(model.net, train_iter, ArrayLoader((images, y), batch_size=50), model.loss, 10, model.updater)
    assert history.epochs[-1].test_accuracy == 1.0
    assert history.epochs[-1].train_loss < 0.5 * history.epochs[0].train_loss


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_labels_outside_0_to_9_are_refused_by_the_fit_before_any_step(impl, monkeypatch):
    """Checked once, on the whole label tensor, at the fit's door: no model is built, no step taken."""
    from linear_nets.pipeline import fit as fit_module
    from linear_nets.pipeline.config import SoftmaxConfig

    built = []
    monkeypatch.setattr(fit_module, "build_model", lambda *args, **kwargs: built.append(1))
    images, y = toy_images(32)
    y[5] = 10
    data = fit_module.Dataset((images, y), classes=[str(k) for k in range(10)])
    with pytest.raises(DataError, match=r"labels must lie in 0\.\.9 \(10 classes\), got values from 0 to 10"):
        fit_module.fit_softmax(SoftmaxConfig(impl=impl, epochs=1), data)
    assert not built


@pytest.mark.parametrize("impl", IMPLS)
def test_images_of_the_wrong_shape_raise_data_error_at_the_models_door(impl):
    """predict and predict_proba check their inputs; the training forward (`net`) trusts the fit's data."""
    model = make_model(impl)
    for door in (model.predict, model.predict_proba):
        with pytest.raises(DataError, match=r"\[4, 1, 32, 32\] have 1024 values per example but the model takes 784"):
            door(torch.rand(4, 1, 32, 32))
        with pytest.raises(DataError, match="floating point"):
            door(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))


@pytest.mark.parametrize("impl", IMPLS)
def test_a_resized_model_takes_resized_images(impl):
    model = make_model(impl, num_inputs=14 * 14)
    assert model.net(torch.rand(3, 1, 14, 14)).shape == (3, 10)


@pytest.mark.parametrize("impl", IMPLS)
def test_an_absurd_learning_rate_raises_training_diverged(impl):
    images, y = toy_images(64)
    model = make_model(impl, lr=1e38)  # the weights overflow to inf within a few steps, even for stable losses
    loader = ArrayLoader((images, y), batch_size=16, shuffle=True, seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as info:
        train(model.net, loader, None, model.loss, 3, model.updater)
    assert info.value.epoch == 1


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan")])
def test_a_non_positive_learning_rate_is_refused_by_the_config_before_any_model(impl, lr):
    from linear_nets.pipeline.config import SoftmaxConfig, validate

    with pytest.raises(ConfigError, match=r"^lr must be a finite number > 0"):
        validate(SoftmaxConfig(impl=impl, lr=lr))
