"""The one training loop: metrics, the three kinds of updater, divergence, history, predict; and its loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import TrainingDiverged
from linear_nets.training import (
    Accumulator,
    EpochRecord,
    GradientStep,
    History,
    accuracy,
    evaluate_accuracy,
    predict,
    train,
    train_epoch,
)


def classification_data(n: int = 100, d: int = 5, q: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator)
    y = torch.randint(0, q, (n,), generator=generator)
    return X, y


def per_example_ce(y_hat, y):
    return torch.nn.functional.cross_entropy(y_hat, y, reduction="none")


class FrozenStep:
    """A GradientStep that records its calls and changes nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def step(self, X, y, y_hat) -> None:
        self.calls.append((X.shape[0], torch.is_grad_enabled()))


def test_accumulator_sums_and_resets():
    acc = Accumulator(2)
    acc.add(1, 2.5)
    acc.add(torch.tensor(3.0), 4)
    assert (acc[0], acc[1]) == (4.0, 6.5)
    acc.reset()
    assert acc.data == [0.0, 0.0]


def test_accuracy_counts_correct_predictions_like_sklearn():
    _, y = classification_data(200, q=4)
    scores = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
    expected = accuracy_score(y.numpy(), scores.argmax(dim=1).numpy()) * 200
    assert accuracy(scores, y).item() == expected
    assert accuracy(scores.argmax(dim=1), y).item() == expected  # already predicted classes


def test_evaluate_accuracy_is_the_mean_over_all_batches():
    X, y = classification_data(103)
    net = torch.nn.Linear(5, 3)
    with torch.no_grad():
        expected = accuracy_score(y.numpy(), net(X).argmax(dim=1).numpy())
    assert evaluate_accuracy(net, ArrayLoader((X, y), batch_size=10)) == pytest.approx(expected, abs=1e-7)


def test_train_epoch_reports_the_exact_mean_loss_and_accuracy():
    X, y = classification_data(103)
    net = torch.nn.Linear(5, 3)
    updater = FrozenStep()
    loss, acc = train_epoch(net, ArrayLoader((X, y), batch_size=10), per_example_ce, updater)
    with torch.no_grad():
        y_hat = net(X)
    # float32: 103 losses summed in batches of 10 against one sum of all; each order is within 103 u (u = 2^-24 ≈
    # 6e-8) of the exact sum, so they may differ by ~1.2e-5 relative on any machine, never more
    assert loss == pytest.approx(per_example_ce(y_hat, y).mean().item(), rel=1.3e-5)
    assert acc == pytest.approx(accuracy_score(y.numpy(), y_hat.argmax(dim=1).numpy()), abs=1e-7)
    # a GradientStep sees every batch, under no_grad (it computes its own gradient)
    assert updater.calls == [(10, False)] * 10 + [(3, False)]


def test_optimizer_updater_minimises_the_mean_loss():
    X, y = classification_data()
    net = torch.nn.Linear(5, 3)
    reference = torch.nn.Linear(5, 3)
    reference.load_state_dict(net.state_dict())
    train_epoch(net, ArrayLoader((X, y), batch_size=100), per_example_ce, torch.optim.SGD(net.parameters(), lr=0.5))
    per_example_ce(reference(X), y).mean().backward()
    with torch.no_grad():
        torch.testing.assert_close(net.weight, reference.weight - 0.5 * reference.weight.grad)


def test_callable_updater_gets_the_batch_size_and_the_gradient_of_the_summed_loss():
    X, y = classification_data(25)
    W = torch.zeros(5, 3, requires_grad=True)
    seen = []

    def updater(batch_size: int) -> None:
        seen.append((batch_size, W.grad.clone()))
        W.grad.zero_()

    train_epoch(lambda X: X @ W, ArrayLoader((X, y), batch_size=20), per_example_ce, updater)
    assert [batch_size for batch_size, _ in seen] == [20, 5]
    W0 = torch.zeros(5, 3, requires_grad=True)
    per_example_ce(X[:20] @ W0, y[:20]).sum().backward()
    torch.testing.assert_close(seen[0][1], W0.grad)


@pytest.mark.parametrize("kind", ["optimizer", "book"])
def test_a_weighted_step_follows_the_gradient_of_the_weighted_mean_or_sum(kind):
    """The loop's step on (X, y, w) against autograd of (1/n) sum_i w_i l_i (an optimizer) or sum_i w_i l_i (the
    book's updater), on random inputs. Same operations in the same order: equal to float32 rounding (1e-6)."""
    rng = torch.Generator().manual_seed(3)
    for n in (1, 7, 97):
        X, y = torch.randn(n, 5, generator=rng), torch.randint(0, 3, (n,), generator=rng)
        w = torch.rand(n, generator=rng)
        ours, reference = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
        reference.load_state_dict(ours.state_dict())
        grads = []
        if kind == "optimizer":
            updater = torch.optim.SGD(ours.parameters(), lr=0.0)
            objective = (w * per_example_ce(reference(X), y)).mean()
        else:
            def updater(batch_size: int, grads: list = grads, ours: torch.nn.Linear = ours) -> None:
                grads.append(ours.weight.grad.clone())

            objective = (w * per_example_ce(reference(X), y)).sum()
        train_epoch(ours, [(X, y, w)], per_example_ce, updater)
        objective.backward()
        torch.testing.assert_close(grads[0] if grads else ours.weight.grad, reference.weight.grad, rtol=1e-6, atol=1e-6)


def test_lbfgs_runs_in_the_one_loop_and_reaches_scikit_learns_optimum():
    """Full-batch L-BFGS through `train` (one batch: the whole set) minimises mean cross-entropy + (wd/2)||W||²: the
    same objective as scikit-learn's LogisticRegression with C = 1 / (n wd). Both stop at a gradient near 0; the
    coefficients agree to 1e-3 (the optimum's conditioning, not rounding, bounds how close two solvers stop)."""
    from sklearn.linear_model import LogisticRegression

    from linear_nets.optim import make_optimizer

    X, y = classification_data(300)
    wd, net = 1e-2, torch.nn.Linear(5, 3)
    updater = make_optimizer(net, "lbfgs", lr=1.0, weight_decay=wd)
    history = train(net, ArrayLoader((X, y), len(y)), None, per_example_ce, 20, updater)
    assert len(history.epochs) == 20 and history.epochs[-1].train_loss < history.epochs[0].train_loss
    reference = LogisticRegression(C=1 / (len(y) * wd), tol=1e-10, max_iter=10_000).fit(X.double(), y)
    W = net.weight.detach().double()
    np.testing.assert_allclose((W - W.mean(0)).numpy(), reference.coef_ - reference.coef_.mean(0), atol=1e-3)


def test_a_non_finite_lbfgs_objective_is_a_divergence_not_an_index_error():
    from linear_nets.optim import make_optimizer

    X, y = classification_data(30)
    net = torch.nn.Linear(5, 3)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1"):
        train(lambda X: net(X) * float("nan"), ArrayLoader((X, y), 30), None, per_example_ce, 2,
              make_optimizer(net, "lbfgs", lr=1.0))  # fmt: skip


def test_a_hand_derived_step_is_a_gradient_step():
    assert isinstance(FrozenStep(), GradientStep)


def test_train_returns_a_history_and_calls_back_every_epoch():
    X = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    net = torch.nn.Linear(2, 2)
    loader = ArrayLoader((X, y), batch_size=20, shuffle=True, seed=0)
    seen: list[EpochRecord] = []
    history = train(
        net, loader, loader, per_example_ce, 5, torch.optim.SGD(net.parameters(), lr=0.5), callbacks=[seen.append]
    )
    assert isinstance(history, History) and history.epochs == seen
    assert history.column("epoch") == [1, 2, 3, 4, 5]
    assert all(r.seconds > 0 for r in seen)
    assert history.epochs[-1].test_accuracy > 0.95
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    keys = {"epoch", "train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "seconds", "train_set_loss"}
    assert history.as_dicts()[0].keys() == keys


def test_train_without_metric_or_test_set():
    X = torch.randn(40, 2)
    y = X @ torch.tensor([2.0, -3.4]) + 4.2
    net = torch.nn.Linear(2, 1)
    history = train(
        lambda X: net(X).squeeze(1),
        ArrayLoader((X, y), batch_size=10),
        None,
        lambda y_hat, y: (y_hat - y) ** 2 / 2,
        2,
        torch.optim.SGD(net.parameters(), lr=0.03),
        metric=None,
    )
    assert [(r.train_accuracy, r.test_accuracy) for r in history.epochs] == [(None, None), (None, None)]


def test_nan_loss_raises_training_diverged_with_epoch_and_step():
    X, y = classification_data(30)
    net = torch.nn.Linear(5, 3)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 3; lower the learning rate") as e:
        train(lambda X: net(X) * float("nan"), ArrayLoader((X, y), 10), None, per_example_ce, 2, FrozenStep())
    assert (e.value.epoch, e.value.step) == (1, 3)


def test_an_absurd_learning_rate_diverges():
    X, y = classification_data(200)
    net = torch.nn.Linear(5, 3)
    with pytest.raises(TrainingDiverged):
        train(net, ArrayLoader((X, y), 10), None, per_example_ce, 5, torch.optim.SGD(net.parameters(), lr=1e38))


def test_predict_returns_the_first_n_images_labels_and_argmax():
    X, y = classification_data(50)
    net = torch.nn.Linear(5, 3)
    images, labels, predicted = predict(net, ArrayLoader((X, y), batch_size=4), n=10)
    torch.testing.assert_close(images, X[:10])
    assert torch.equal(labels, y[:10])
    with torch.no_grad():
        assert torch.equal(predicted, net(X[:10]).argmax(dim=1))
    assert len(predict(net, ArrayLoader((X, y), batch_size=4), n=500)[0]) == 50


def test_loader_converts_uint8_images_once_and_batches_equal_the_per_example_conversion():
    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    labels = torch.arange(50)
    loader = ArrayLoader((images, labels), batch_size=8, shuffle=True, seed=3)
    for _ in range(2):  # the second epoch reuses the float copy
        seen = []
        for X, y in loader:
            assert X.dtype == torch.float32
            torch.testing.assert_close(X, images[y].float() / 255, rtol=0, atol=0)
            seen.append(y)
        assert sorted(torch.cat(seen).tolist()) == list(range(50))
    first = list(ArrayLoader((images, labels), 8, shuffle=True, seed=3))
    second = list(ArrayLoader((images, labels), 8, shuffle=True, seed=3))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, second, strict=True))
    assert next(iter(ArrayLoader((images, labels), 8, resize=2)))[0].shape == (8, 1, 2, 2)
