"""The answers in notebooks/exercises/ and notebooks/questions.ipynb, asserted independently of the notebooks.

Each test states one claim an answer rests on and checks it with the package, on small data, so a change that
falsifies an answer fails here (quickly) and not only when the notebooks are executed. The notebooks themselves are
executed by tests/test_notebooks.py; the last test here checks their structure: one heading per exercise, each stated
in English and in Chinese.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from linear_nets.closed_form import RankDeficientWarning, least_squares
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.synthetic import data_iter, synthetic_data
from linear_nets.demonstrations import gaussian_nll
from linear_nets.errors import TrainingDiverged
from linear_nets.losses import SquaredLoss, absolute_loss, huber_loss, squared_loss
from linear_nets.manual.linear_regression import fit as manual_fit
from linear_nets.manual.linear_regression import linreg_grad
from linear_nets.manual.softmax_regression import SoftmaxRegression as StableSoftmaxRegression
from linear_nets.scratch.linear_regression import fit as scratch_fit
from linear_nets.scratch.linear_regression import linreg, sgd
from linear_nets.scratch.softmax_regression import SoftmaxRegression as NaiveSoftmaxRegression
from linear_nets.softmax import cross_entropy, softmax, stable_cross_entropy, stable_softmax
from linear_nets.timing import Timer
from linear_nets.training import evaluate_accuracy, train_epoch

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
TRUE_W, TRUE_B = torch.tensor([2.0, -3.4]), 4.2


@pytest.fixture(scope="module")
def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic_data(TRUE_W, TRUE_B, 1000, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def fashion():
    from linear_nets.data.fashion_mnist import FashionMNIST

    return FashionMNIST("train"), FashionMNIST("test")


# --- 3.1 ---------------------------------------------------------------------------------------------------------


def test_3_1_1_the_mean_minimises_squared_error_and_is_the_gaussian_mle():
    x = 5 + 2 * torch.randn(101, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    _, b = least_squares(torch.zeros(101, 0), x)  # only a bias: the constant closest to x
    assert b.item() == pytest.approx(x.mean().item(), abs=1e-12)
    for sigma in (0.5, 1.0, 4.0):
        at = x.mean().item()
        nll = [gaussian_nll(torch.full_like(x, at + d), x, sigma).from_density.sum().item() for d in (-0.01, 0, 0.01)]
        assert nll[1] < nll[0] and nll[1] < nll[2]


def test_3_1_2_normal_equations_gradient_and_rank_deficiency(regression_data):
    features, labels = regression_data
    X = torch.cat([features, torch.ones(1000, 1)], dim=1).double()
    y = labels.double()
    w = torch.randn(3, 1, dtype=torch.float64, requires_grad=True)
    ((y - X @ w) ** 2).sum().backward()
    torch.testing.assert_close(w.grad, 2 * X.T @ (X @ w.detach() - y))
    w_star = torch.linalg.solve(X.T @ X, X.T @ y).reshape(-1)
    w_ls, b_ls = least_squares(features, labels)
    torch.testing.assert_close(w_star, torch.cat([w_ls, b_ls.reshape(1)]))
    with pytest.warns(RankDeficientWarning):
        least_squares(torch.cat([features, features[:, :1]], dim=1), labels)


def test_3_1_3_laplace_nll_is_the_l1_loss_plus_log_2():
    gen = torch.Generator().manual_seed(0)
    y_hat, y = (
        torch.randn(500, dtype=torch.float64, generator=gen),
        3 * torch.randn(500, dtype=torch.float64, generator=gen),
    )
    nll = -torch.log(0.5 * torch.exp(-(y - y_hat).abs()))
    torch.testing.assert_close(nll - absolute_loss(y_hat, y), torch.full_like(y, math.log(2)))


def test_3_1_3_the_l1_optimum_of_a_constant_is_any_median():
    pts = torch.tensor([1.0, 2.0, 4.0, 7.0, 11.0, 20.0])
    bs = torch.linspace(0, 22, 2201)
    l1 = torch.stack([absolute_loss(torch.full_like(pts, b), pts).sum() for b in bs])
    flat = bs[l1 <= l1.min() + 1e-4]
    assert flat.min().item() == pytest.approx(4.0, abs=0.011) and flat.max().item() == pytest.approx(7.0, abs=0.011)


def test_3_1_3_fixed_step_descent_on_l1_never_settles_huber_and_decaying_steps_do():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(200, 2, generator=gen)
    truth = torch.tensor([2.0, -3.4, 4.2])
    y = X @ truth[:2] + truth[2]  # no noise: the optimum is the truth

    def final_distance(loss_fn, decay, steps=200, lr=0.3):
        theta = torch.zeros(3, requires_grad=True)
        for t in range(steps):
            loss_fn(X @ theta[:2] + theta[2], y).mean().backward()
            with torch.no_grad():
                theta -= lr / (1 + t / 10 if decay else 1) * theta.grad
                theta.grad.zero_()
        return (theta.detach() - truth).norm().item()

    assert final_distance(absolute_loss, decay=False) > 0.05
    assert final_distance(absolute_loss, decay=True) < 0.01
    assert final_distance(huber_loss, decay=False) < 1e-3


# --- 3.2 ---------------------------------------------------------------------------------------------------------


def book_loop(w, b, features, labels, num_epochs=3, lr=0.03, batch_size=10):
    gen = torch.Generator().manual_seed(0)
    for _ in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels, gen):
            squared_loss(linreg(X, w, b), y).sum().backward()
            sgd([w, b], lr, batch_size)


def test_3_2_1_zero_initial_weights_still_train_linear_regression_to_the_same_solution(regression_data):
    features, labels = regression_data
    w_ls, b_ls = least_squares(features, labels)
    for w0 in (torch.zeros(2, 1), torch.normal(0, 10.0, (2, 1), generator=torch.Generator().manual_seed(1))):
        w, b = w0.clone().requires_grad_(True), torch.zeros(1, requires_grad=True)
        book_loop(w, b, features, labels)
        torch.testing.assert_close(w.detach().reshape(-1).double(), w_ls, atol=3e-3, rtol=0)
        assert b.item() == pytest.approx(b_ls.item(), abs=3e-3)


def test_3_2_1_a_zero_initialised_hidden_layer_never_learns(regression_data):
    features, labels = regression_data
    W1, b1 = torch.zeros(2, 8, requires_grad=True), torch.zeros(8, requires_grad=True)
    w2, b2 = torch.zeros(8, 1, requires_grad=True), torch.zeros(1, requires_grad=True)
    for X, y in data_iter(10, features, labels, torch.Generator().manual_seed(0)):
        squared_loss(linreg(torch.relu(linreg(X, W1, b1)), w2, b2), y).sum().backward()
        sgd([W1, b1, w2, b2], 0.03, 10)
    assert (W1 == 0).all() and (w2 == 0).all() and b2.item() != 0  # only the output bias moved


def test_3_2_2_autograd_learns_ohms_law():
    gen = torch.Generator().manual_seed(1)
    current = 4 * torch.rand(200, 1, generator=gen) - 2
    voltage = 4.7 * current + 0.05 * torch.randn(200, 1, generator=gen)
    w, b, _ = scratch_fit(current, voltage, lr=0.3, num_epochs=5, batch_size=10)
    assert w.item() == pytest.approx(4.7, abs=0.02) and abs(b.item()) < 0.02


def test_3_2_3_plancks_law_linearised_gives_the_temperature():
    c2, temperature = 14387.77, 5800.0
    lam = torch.linspace(0.25, 3.0, 120, dtype=torch.float64)
    noise = 1 + 0.02 * torch.randn(120, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    density = 1 / lam**5 / torch.expm1(c2 / (lam * temperature)) * noise
    slope, _ = least_squares((c2 / lam).reshape(-1, 1), torch.log1p(1 / (lam**5 * density)))
    assert 1 / slope.item() == pytest.approx(temperature, rel=0.01)


def test_3_2_4_second_derivatives_need_create_graph_and_the_hessian_is_xtx_over_n(regression_data):
    features, labels = regression_data
    X = torch.cat([features, torch.ones(1000, 1)], dim=1).double()
    theta = torch.randn(3, 1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(squared_loss(X @ theta, labels.double()).mean(), theta)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad.sum(), theta)
    H = torch.autograd.functional.hessian(lambda t: squared_loss(X @ t, labels.double()).mean(), theta.detach())
    torch.testing.assert_close(H.reshape(3, 3), X.T @ X / 1000)


def test_3_2_5_without_reshape_the_loss_broadcasts_to_n_by_n_and_learns_the_mean(regression_data):
    features, labels = regression_data
    y_flat = labels.reshape(-1)
    y_hat = linreg(features, torch.zeros(2, 1), torch.zeros(1))
    assert (y_hat - y_flat).shape == (1000, 1000)
    assert squared_loss(y_hat, y_flat).shape == (1000, 1)
    w, b = torch.zeros(2, 1, requires_grad=True), torch.zeros(1, requires_grad=True)
    for _ in range(3):
        for X, y in data_iter(10, features, y_flat, torch.Generator().manual_seed(0)):
            ((linreg(X, w, b) - y) ** 2 / 2).sum().backward()
            sgd([w, b], 0.003, 10)
    assert w.detach().abs().max() < 0.5 and b.item() == pytest.approx(y_flat.mean().item(), abs=0.3)


def test_3_2_6_learning_rates_too_small_fine_and_divergent(regression_data):
    features, labels = regression_data
    assert scratch_fit(features, labels, lr=0.001, num_epochs=1)[2][-1] > 5
    assert scratch_fit(features, labels, lr=0.1, num_epochs=1)[2][-1] < 1e-3
    with pytest.raises(TrainingDiverged):
        scratch_fit(features, labels, lr=3.0, num_epochs=2)


def test_3_2_7_the_last_batch_is_the_remainder(regression_data):
    features, labels = regression_data
    assert [len(y) for _, y in data_iter(64, features, labels)] == [64] * 15 + [40]


# --- 3.3 ---------------------------------------------------------------------------------------------------------


def one_epoch(features, labels, reduction, lr, batch_size):
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(0))
        net.bias.zero_()
    for X, y in ArrayLoader((features, labels), batch_size, shuffle=True, seed=1):
        net.zero_grad()
        loss = squared_loss(net(X), y)
        (loss.sum() if reduction == "sum" else loss.mean()).backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    with torch.no_grad():
        return torch.cat([net.weight.reshape(-1), net.bias]), squared_loss(net(features), labels).mean().item()


@pytest.mark.parametrize("batch_size", [5, 50])
def test_3_3_1_a_summed_loss_needs_the_learning_rate_divided_by_the_batch_size(regression_data, batch_size):
    features, labels = regression_data
    mean_params, _ = one_epoch(features, labels, "mean", 0.03, batch_size)
    sum_params, _ = one_epoch(features, labels, "sum", 0.03 / batch_size, batch_size)
    torch.testing.assert_close(sum_params, mean_params, atol=1e-5, rtol=1e-5)


def test_3_3_1_keeping_the_learning_rate_with_a_summed_loss_diverges_for_large_batches(regression_data):
    features, labels = regression_data
    _, loss = one_epoch(features, labels, "sum", 0.03, 250)
    assert not loss < 1e3  # NaN or huge


def test_3_3_2_huber_and_l1_resist_outliers_that_pull_least_squares(regression_data):
    features, labels = regression_data
    dirty = labels + 30.0 * (torch.rand(1000, 1, generator=torch.Generator().manual_seed(2)) < 0.05)
    truth = torch.cat([TRUE_W, torch.tensor([TRUE_B])])
    errors = {}
    for name in ("squared", "huber", "l1"):
        w, b, _ = manual_fit(features, dirty, loss=name, lr=0.03, num_epochs=5, batch_size=10)
        errors[name] = (torch.cat([w, b.reshape(1)]) - truth).norm().item()
    assert errors["squared"] > 1.0 and errors["huber"] < 0.15 and errors["l1"] < 0.15


def test_3_3_2_the_books_huber_is_torchs_smooth_l1():
    r = torch.linspace(-4, 4, 81)
    zero = torch.zeros_like(r)
    torch.testing.assert_close(huber_loss(r, zero), torch.nn.functional.smooth_l1_loss(r, zero, reduction="none"))


def test_3_3_3_grad_holds_the_hand_derived_gradient(regression_data):
    features, labels = regression_data
    net = torch.nn.Linear(2, 1)
    X, y = features[:10], labels[:10]
    y_hat = net(X)
    squared_loss(y_hat, y).mean().backward()
    grad_w, grad_b = linreg_grad(X, y, y_hat.detach(), SquaredLoss())
    torch.testing.assert_close(net.weight.grad, grad_w.T)
    torch.testing.assert_close(net.bias.grad, grad_b)


# --- 3.4 ---------------------------------------------------------------------------------------------------------


def test_3_4_1_the_cross_entropy_hessian_is_the_covariance_of_the_one_hot_class():
    o = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p = stable_softmax(o.unsqueeze(0))[0]
    covariance = torch.diag(p) - torch.outer(p, p)
    for label in (0, 4):
        H = torch.autograd.functional.hessian(
            lambda z, y=label: stable_cross_entropy(z.unsqueeze(0), torch.tensor([y]))[0], o
        )
        torch.testing.assert_close(H, covariance)
    samples = torch.multinomial(p, 50_000, replacement=True, generator=torch.Generator().manual_seed(1))
    Y = torch.nn.functional.one_hot(samples, 5).double()
    torch.testing.assert_close(torch.cov(Y.T), covariance, atol=0.01, rtol=0)


def test_3_4_2_joint_coding_of_three_equiprobable_classes_approaches_log2_3():
    per_symbol = {n: math.ceil(n * math.log2(3)) / n for n in (1, 5, 100, 1000)}
    assert per_symbol[1] == 2 and per_symbol[5] == 1.6
    assert math.log2(3) <= per_symbol[1000] < per_symbol[100] < 1.6
    trits = torch.randint(0, 3, (1000,), generator=torch.Generator().manual_seed(0))
    powers = 3 ** torch.arange(5)
    codes = (trits.reshape(-1, 5) * powers).sum(dim=1)
    assert codes.max() < 256 and torch.equal(((codes.unsqueeze(1) // powers) % 3).reshape(-1), trits)


def test_3_4_3_real_softmax_lies_between_the_max_and_the_max_plus_log_n_over_lambda():
    x = 3 * torch.randn(2000, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    m = x.max(dim=1).values
    for k in (2, 7):
        for lam in (0.1, 1.0, 5.0):
            lse = torch.logsumexp(lam * x[:, :k], dim=1) / lam
            mk = x[:, :k].max(dim=1).values
            assert (lse >= mk - 1e-12).all() and (lse - mk <= math.log(k) / lam + 1e-12).all()  # 1e-12: rounding
    soft_min = -torch.logsumexp(-10 * x, dim=1) / 10
    assert (soft_min <= x.min(dim=1).values + 1e-12).all()
    assert (torch.logsumexp(100 * x, dim=1) / 100 - m).max() <= math.log(7) / 100 + 1e-12  # -> max as λ grows
    # the package's stable cross-entropy is the log-sum-exp minus the true logit
    y = torch.zeros(2000, dtype=torch.long)
    torch.testing.assert_close(stable_cross_entropy(x, y) + x[:, 0], torch.logsumexp(x, dim=1))


# --- 3.5 ---------------------------------------------------------------------------------------------------------


def test_3_5_1_small_batches_read_far_fewer_examples_per_second():
    images = torch.randint(0, 256, (20_000, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(20_000, dtype=torch.long)

    def rate(batch_size, max_batches):
        timer, count = Timer(), 0
        for i, (X, _) in enumerate(ArrayLoader((images, labels), batch_size, shuffle=True, seed=0)):
            count += len(X)
            if i + 1 == max_batches:
                break
        return count / timer.stop()

    rate(256, 5)  # warm-up
    assert rate(256, 60) > 5 * rate(1, 1000)  # measured ~40x on a 2-core machine


# --- 3.6 ---------------------------------------------------------------------------------------------------------


def test_3_6_1_the_naive_softmax_overflows_above_about_88():
    assert torch.isfinite(torch.exp(torch.tensor(88.0))) and torch.isinf(torch.exp(torch.tensor(89.0)))
    assert softmax(torch.tensor([[100.0, 0.0]])).isnan().any()
    torch.testing.assert_close(stable_softmax(torch.tensor([[100.0, 0.0]])), torch.tensor([[1.0, 0.0]]))


def test_3_6_2_the_naive_cross_entropy_of_a_confident_wrong_prediction_is_infinite():
    logits = torch.tensor([[0.0, -120.0]], requires_grad=True)  # nothing overflows; the true class underflows
    naive = cross_entropy(softmax(logits), torch.tensor([1]))
    assert torch.isinf(naive).all()
    naive.sum().backward()
    assert logits.grad.isnan().any()
    assert stable_cross_entropy(logits.detach(), torch.tensor([1])).item() == pytest.approx(120.0)


@pytest.mark.needs_data
def test_3_6_3_a_large_step_kills_the_naive_model_but_not_the_stable_one(fashion):
    train, test = fashion
    loader = ArrayLoader((train.images[:3000], train.labels[:3000]), 256, shuffle=True, seed=0)
    naive = NaiveSoftmaxRegression(784, 10, lr=3.0, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TrainingDiverged):
        train_epoch(naive.net, loader, naive.loss, naive.updater)
    stable = StableSoftmaxRegression(784, 10, lr=3.0, generator=torch.Generator().manual_seed(0))
    loss, _ = train_epoch(stable.net, loader, stable.loss, stable.updater)
    assert math.isfinite(loss)
    assert evaluate_accuracy(stable.net, ArrayLoader((test.images[:2000], test.labels[:2000]), 2000)) > 0.3


def test_3_6_4_least_expected_cost_beats_the_most_likely_class_when_costs_differ():
    gen = torch.Generator().manual_seed(0)
    probs = stable_softmax(1.5 * torch.randn(50_000, 4, generator=gen))
    truth = torch.multinomial(probs, 1, generator=gen).squeeze(1)  # calibrated by construction
    cost = 1.0 - torch.eye(4)
    cost[:, 0] *= 20.0  # missing class 0 costs 20
    argmax, bayes = probs.argmax(dim=1), (probs @ cost.T).argmin(dim=1)
    assert cost[bayes, truth].mean() < 0.8 * cost[argmax, truth].mean()
    assert (bayes == truth).float().mean() < (argmax == truth).float().mean()


def test_3_6_5_every_step_of_a_softmax_touches_every_word_of_the_vocabulary():
    V = 5000
    W = torch.zeros(16, V, requires_grad=True)
    stable_cross_entropy(torch.randn(1, 16) @ W, torch.tensor([7])).sum().backward()
    assert (W.grad.abs().sum(dim=0) > 0).all()  # one example, one true word: all V columns get a gradient


# --- 3.7 ---------------------------------------------------------------------------------------------------------


@pytest.mark.needs_data
def test_3_7_1_in_two_epochs_the_largest_batch_is_the_weakest_at_every_rate(fashion):
    """The notebook's grid: 4,000 training images, 2 epochs, concise model; batch 1024 (16x fewer steps than 64)
    scores below both smaller batches at every learning rate, and lr 3 with batch 1024 is the weakest cell."""
    from linear_nets.concise.softmax_regression import SoftmaxRegression

    train, test = fashion
    test_iter = ArrayLoader((test.images[:2000], test.labels[:2000]), 2000)
    accuracy = torch.zeros(3, 3)
    for i, lr in enumerate([0.03, 0.3, 3.0]):
        for j, bs in enumerate([64, 256, 1024]):
            model = SoftmaxRegression(784, 10, lr=lr, generator=torch.Generator().manual_seed(0))
            loader = ArrayLoader((train.images[:4000], train.labels[:4000]), bs, shuffle=True, seed=0)
            for _ in range(2):
                train_epoch(model.net, loader, model.loss, model.updater)
            accuracy[i, j] = evaluate_accuracy(model.net, test_iter)
    assert all(accuracy[i, 2] < accuracy[i, :2].min() for i in range(3))
    assert accuracy.argmin().item() == 8  # lr 3, batch 1024


@pytest.mark.needs_data
def test_3_7_2_with_many_epochs_on_little_data_test_accuracy_wobbles_far_below_training(fashion):
    train, test = fashion
    loader = ArrayLoader((train.images[:1000], train.labels[:1000]), 100, shuffle=True, seed=0)
    test_iter = ArrayLoader((test.images[:2000], test.labels[:2000]), 2000)
    model = StableSoftmaxRegression(784, 10, lr=0.5, generator=torch.Generator().manual_seed(0))
    train_acc, test_acc = [], []
    for _ in range(30):
        train_epoch(model.net, loader, model.loss, model.updater)
        train_acc.append(evaluate_accuracy(model.net, loader))
        test_acc.append(evaluate_accuracy(model.net, test_iter))
    assert max(train_acc) - max(test_acc) > 0.1
    assert sum(b < a for a, b in pairwise(test_acc)) >= 6  # falls in at least 6 of 29 epochs


# --- questions.ipynb ---------------------------------------------------------------------------------------------


def test_sgd_approaches_the_closed_form_and_not_below_it(regression_data):
    features, labels = regression_data
    w_ls, b_ls = least_squares(features, labels)
    closed = squared_loss(features.double() @ w_ls + b_ls, labels.double()).mean().item()
    losses = manual_fit(features, labels, lr=0.1, num_epochs=3, batch_size=20)[2]
    assert closed <= losses[-1] < 1.2 * closed


def test_least_squares_is_not_the_l1_or_huber_optimum_with_outliers(regression_data):
    features, labels = regression_data
    dirty = labels + 20.0 * (torch.rand(1000, 1, generator=torch.Generator().manual_seed(1)) < 0.05)
    w_o, b_o = least_squares(features, dirty)
    for name, loss_fn in (("l1", absolute_loss), ("huber", huber_loss)):
        w, b, _ = manual_fit(features, dirty, loss=name, lr=0.03, num_epochs=5, batch_size=20)
        at_ls = loss_fn(features.double() @ w_o + b_o, dirty.double()).mean().item()
        assert loss_fn(features @ w + b, dirty).mean().item() < 0.8 * at_ls


def test_softmax_on_separable_classes_has_no_finite_optimum():
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(200, 2, generator=gen)
    y = (X[:, 0] + X[:, 1] > 0).long()
    X += 0.5 * (2 * y.unsqueeze(1) - 1)
    model = StableSoftmaxRegression(2, 2, lr=1.0, generator=torch.Generator().manual_seed(0))
    loader = ArrayLoader((X, y), 200)
    gaps, losses = [], []
    for _ in range(200):
        losses.append(train_epoch(model.net, loader, model.loss, model.updater)[0])
        with torch.no_grad():
            o = model.net(X)
        gaps.append((o[:, 1] - o[:, 0]).abs().mean().item())
    assert gaps[9] < gaps[99] < gaps[-1] and losses[-1] < losses[99] < losses[9]


def test_a_polynomial_through_every_point_fits_the_noise():
    def powers(t, degree):
        return torch.stack([t**k for k in range(1, degree + 1)], dim=1)

    train_mse, test_mse = {1: [], 7: []}, {1: [], 7: []}
    for seed in range(10):
        gen = torch.Generator().manual_seed(seed)
        x, x_test = (2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1 for n in (8, 500))
        y, y_test = (2 * t + 1 + 0.3 * torch.randn(len(t), generator=gen, dtype=torch.float64) for t in (x, x_test))
        for degree in (1, 7):
            w, b = least_squares(powers(x, degree), y)
            train_mse[degree].append(((powers(x, degree) @ w + b - y) ** 2).mean().item())
            test_mse[degree].append(((powers(x_test, degree) @ w + b - y_test) ** 2).mean().item())
    assert statistics.median(train_mse[7]) < 1e-10 < statistics.median(train_mse[1])
    assert statistics.median(test_mse[7]) > 10 * statistics.median(test_mse[1])


def test_dropping_the_rest_costs_steps_and_so_loss_after_the_same_epochs(regression_data):
    features, labels = regression_data

    def final_loss(mode, seed):
        w = torch.normal(0, 0.01, (2, 1), generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
        b = torch.zeros(1, requires_grad=True)
        for _ in range(3):
            for X, y in ArrayLoader((features, labels), 64, shuffle=True, seed=seed, sampling=mode):
                squared_loss(linreg(X, w, b), y).sum().backward()
                sgd([w, b], 0.03, X.shape[0])
        with torch.no_grad():
            return squared_loss(linreg(features, w, b), labels).mean().item()

    dropped = [final_loss("shuffle-drop-last", s) for s in range(3)]
    kept = [final_loss("shuffle", s) for s in range(3)]
    assert min(dropped) > max(kept)


# --- the notebooks' structure ------------------------------------------------------------------------------------

EXERCISES_PER_SECTION = {"3.1": 3, "3.2": 7, "3.3": 3, "3.4": 3, "3.5": 3, "3.6": 5, "3.7": 2}  # 26 numbered exercises


@pytest.mark.parametrize("section", list(EXERCISES_PER_SECTION))
def test_every_exercise_has_a_heading_and_is_stated_in_english_and_chinese(section):
    (path,) = (NOTEBOOK_DIR / "exercises").glob(f"{section}-*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    headings = [m for text in markdown for m in re.findall(r"^### Exercise (\d+\.\d+\.\d+)$", text, re.MULTILINE)]
    assert headings == [f"{section}.{k}" for k in range(1, EXERCISES_PER_SECTION[section] + 1)]
    stated = [text for text in markdown if text.startswith("### Exercise")]
    assert all("**EN.**" in text and "**中文.**" in text for text in stated)
    assert sum(EXERCISES_PER_SECTION.values()) == 26
