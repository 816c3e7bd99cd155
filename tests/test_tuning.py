"""Validation split, standardisation, early stopping, weight decay, optimisers, schedules, the tuner and presets."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linear_nets.concise import softmax_regression as concise
from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import ConfigError, DataError
from linear_nets.manual import softmax_regression as manual
from linear_nets.optim import lr_at, make_optimizer
from linear_nets.pipeline.callbacks import EarlyStopping
from linear_nets.pipeline.config import SOFTMAX_PRESETS as PRESETS
from linear_nets.pipeline.config import SoftmaxConfig, as_flags, grid_configs, validate
from linear_nets.pipeline.fit import Dataset, fashion_mnist, fit_softmax
from linear_nets.pipeline.tuning import tune_softmax
from linear_nets.regularization import Standardized, Standardizer, train_val_split
from linear_nets.scratch import softmax_regression as scratch
from linear_nets.training import EpochRecord, evaluate_accuracy, train, train_epoch

IMPLS = {"scratch": scratch.SoftmaxRegression, "manual": manual.SoftmaxRegression, "concise": concise.SoftmaxRegression}


def toy_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [n, 1, 28, 28] whose class c shows as a bright band at rows 2c..2c+2 (linearly learnable)."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=generator)
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=generator, dtype=torch.uint8)
    for i, row in enumerate((2 * y).tolist()):
        images[i, 0, row : row + 3] += 150
    return images, y


def toy_data(n_train: int = 300, seed: int = 0) -> Dataset:
    """Training images (of which a config's `val_fraction` is held out) and 100 test images."""
    return Dataset(toy_images(n_train, seed), toy_images(100, seed + 2))


def weights(model) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [d, q], b [q]) of any implementation, detached copies."""
    tensors = model.state_tensors()
    return tensors["W"].clone(), tensors["b"].clone()


# --- the validation split -----------------------------------------------------------------------------------------


def test_split_is_stratified_disjoint_complete_and_seeded():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[
        torch.randperm(100, generator=torch.Generator().manual_seed(1))
    ]
    train, val = train_val_split(labels, 0.2, seed=3)
    assert torch.bincount(labels[val]).tolist() == [10, 6, 4]  # 20% of each class
    assert torch.bincount(labels[train]).tolist() == [40, 24, 16]
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(100))
    again = train_val_split(labels, 0.2, seed=3)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)
    assert not torch.equal(train_val_split(labels, 0.2, seed=4)[1], val)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, True, "0.1"])
def test_a_fraction_outside_0_1_is_the_configs_to_refuse(fraction):
    with pytest.raises(ConfigError, match="val_fraction must be a finite number > 0 and < 1"):
        validate(SoftmaxConfig(val_fraction=fraction))


def test_the_fit_refuses_a_split_that_leaves_a_part_empty():
    assert len(train_val_split(torch.tensor([0, 1, 2]), 0.1)[1]) == 0  # the formula: round(1 * 0.1) = 0 of each
    images = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(ConfigError, match=r"val_fraction 0\.1 of 3 examples leaves an empty validation set") as e:
        fit_softmax(SoftmaxConfig(val_fraction=0.1, epochs=1), Dataset((images, torch.tensor([0, 1, 2]))))
    assert e.value.fields == ("val_fraction",)


# --- standardisation ----------------------------------------------------------------------------------------------


def test_standardizer_statistics_match_numpy_and_floor_the_std():
    images, _ = toy_images(50)
    images[:, 0, 0, 0] = 7  # a constant pixel: its std is 0, floored to EPS
    s, Z = Standardizer.fit_transform(images)
    flat = images.reshape(50, -1).numpy().astype(np.float64) / 255
    # a float32 mean of 50 values in [0, 1] is within 50 u = 3e-6 (u = 2^-24) of the exact one, whatever the order
    np.testing.assert_allclose(s.mean.numpy(), flat.mean(axis=0), rtol=0, atol=3e-6)
    np.testing.assert_allclose(s.std.numpy(), np.maximum(flat.std(axis=0), Standardizer.EPS), rtol=1e-5)
    torch.testing.assert_close(Z, s(images))  # fit_transform = fit, then transform
    torch.testing.assert_close(Standardizer.fit(images.float() / 255).std, s.std)  # float input: same statistics
    assert s.std[0] == pytest.approx(Standardizer.EPS)
    z = s(images.float() / 255)
    assert z.shape == (50, 784)
    np.testing.assert_allclose(z[:, 1:].mean(0).numpy(), 0, atol=1e-5)
    assert set(s.state_dict()) == {"mean", "std"}  # what a checkpoint saves


def test_standardizer_is_fitted_on_the_training_split_only_and_applied_at_predict():
    data = toy_data()
    data.test = (data.test[0] // 2, data.test[1])  # a test set with other statistics must not leak in
    result = fit_softmax(SoftmaxConfig(impl="manual", epochs=2, standardize=True, val_fraction=0.2), data)
    train_idx, _ = train_val_split(data.train[1], 0.2, seed=0)  # the validation rows must not leak in either
    train_mean = data.train[0][train_idx].reshape(len(train_idx), -1).double().mean(0) / 255
    torch.testing.assert_close(result.model.mean, train_mean.float())
    X = data.test[0][:5].float() / 255
    inner = result.model.model
    expected = inner.logits((X.reshape(5, -1) - result.model.mean) / result.model.std)
    torch.testing.assert_close(result.model.logits(X), expected)


def test_standardizer_checks_its_inputs_at_the_door_as_the_models_do():
    with pytest.raises(DataError, match="have 10 values per example but the model takes 784"):
        Standardizer.fit(toy_images(4)[0])(torch.zeros(2, 10))


@pytest.mark.parametrize("impl", IMPLS)
def test_standardized_training_equals_training_on_standardized_inputs(impl):
    images, y = toy_images(64)
    s = Standardizer.fit(images)
    model = Standardized(IMPLS[impl](784, 10, lr=0.1, generator=torch.Generator().manual_seed(0)), s)
    twin = IMPLS[impl](784, 10, lr=0.1, generator=torch.Generator().manual_seed(0))
    train_epoch(model.net, ArrayLoader((images, y), 16), model.loss, model.updater)
    train_epoch(twin.net, ArrayLoader((s(images.float() / 255), y), 16), twin.loss, twin.updater)
    for a, b in zip(weights(model.model), weights(twin), strict=True):
        torch.testing.assert_close(a, b)


# --- early stopping -----------------------------------------------------------------------------------------------


def test_train_stops_when_the_callback_returns_true():
    X, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
    net = torch.nn.Linear(2, 2)
    it = ArrayLoader((X, y), 8)
    h = train(
        net,
        it,
        it,
        torch.nn.CrossEntropyLoss(reduction="none"),
        10,
        torch.optim.SGD(net.parameters(), lr=0.1),
        callbacks=[lambda r: r.epoch == 3],
    )
    assert [r.epoch for r in h.epochs] == [1, 2, 3]


def test_early_stopping_restores_the_best_epochs_weights():
    # Few, noisy training examples and a large step: validation accuracy rises, then wanders down as it overfits.
    train_data, val_data = toy_images(40, seed=5), toy_images(200, seed=6)
    noisy = train_data[1].clone()
    noisy[:12] = (noisy[:12] + 3) % 10
    model = manual.SoftmaxRegression(784, 10, lr=3.0, generator=torch.Generator().manual_seed(0))
    snapshots = []
    stopper = EarlyStopping(model.parameters(), patience=3)
    val_iter = ArrayLoader(val_data, 64)
    history = train(model.net, ArrayLoader((train_data[0], noisy), 8, shuffle=True, seed=0), None, model.loss,
                    40, model.updater, val_iter=val_iter,
                    callbacks=[lambda r: snapshots.append(weights(model)), stopper])  # fmt: skip
    accs = history.column("val_accuracy")
    assert len(history.epochs) < 40 and len(history.epochs) == stopper.best_epoch + 3  # stopped by patience
    assert stopper.best_epoch == 1 + int(np.argmax(accs)) and stopper.best_epoch < len(accs)
    assert not torch.equal(weights(model)[0], snapshots[stopper.best_epoch - 1][0])  # last epoch differs...
    stopper.restore()
    for a, b in zip(weights(model), snapshots[stopper.best_epoch - 1], strict=True):
        assert torch.equal(a, b)  # ...and the best epoch's weights are back
    assert evaluate_accuracy(model.net, val_iter) == pytest.approx(max(accs))


def test_early_stopping_state_round_trips_through_named_tensors():
    w = torch.zeros(3)
    stopper = EarlyStopping([w], patience=2)
    for epoch, acc in enumerate([0.5, 0.8, 0.7], start=1):
        w.fill_(epoch)
        stopper.on_epoch_end(EpochRecord(epoch, 0.0, val_accuracy=acc))
    w.fill_(9.0)
    resumed = EarlyStopping([w], patience=2)
    resumed.load_state_tensors(stopper.state_tensors())
    assert (resumed.best_epoch, resumed.best_metric) == (2, 0.8)
    assert resumed.on_epoch_end(EpochRecord(4, 0.0, val_accuracy=0.75))  # 2 epochs since the best: stop
    resumed.restore()
    assert torch.equal(w, torch.full((3,), 2.0))


def test_early_stopping_refuses_bad_patience_and_a_missing_validation_split_in_the_config():
    # the config is the one place that checks them: a fit builds its EarlyStopping from a validated config
    with pytest.raises(ConfigError, match=r"^early_stopping must be an integer >= 1, got 0$"):
        fit_softmax(SoftmaxConfig(early_stopping=0, val_fraction=0.2), toy_data())
    with pytest.raises(ConfigError, match=r"^early_stopping needs a validation split: set val_fraction"):
        fit_softmax(SoftmaxConfig(early_stopping=3), toy_data())


def test_fit_softmax_restores_the_best_epoch_and_reports_its_accuracies():
    config = SoftmaxConfig(impl="manual", lr=3.0, epochs=6, val_fraction=0.25)
    result = fit_softmax(config, toy_data(120))
    accs = result.history.column("val_accuracy")
    assert result.val_accuracy == max(accs) and result.best_epoch == 1 + accs.index(max(accs))
    assert result.history.column("test_accuracy") == [None] * 6  # the test set is scored once, at the end
    test_iter = ArrayLoader(toy_data(120).test, 50)
    assert result.test_accuracy == pytest.approx(evaluate_accuracy(result.model.logits, test_iter))


# --- weight decay -------------------------------------------------------------------------------------------------


def test_manual_weight_decay_gradient_equals_autograd_in_float64():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(9, 6, generator=g, dtype=torch.float64), torch.randint(0, 4, (9,), generator=g)
    W = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    wd = 0.37
    (F.cross_entropy(X @ W + b, y) + wd / 2 * (W * W).sum()).backward()
    grad_W, grad_b = manual.gradients(X, y, (X @ W + b).detach(), W=W.detach(), weight_decay=wd)
    torch.testing.assert_close(grad_W, W.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_b, b.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_each_model_steps_on_the_weight_decayed_loss(impl):
    X, y = toy_images(32)
    model = IMPLS[impl](784, 10, lr=0.5, weight_decay=0.2, generator=torch.Generator().manual_seed(1))
    W0, b0 = weights(model)
    W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    Xf = X.reshape(32, -1).float() / 255
    (F.cross_entropy(Xf @ W + b, y) + 0.2 / 2 * (W * W).sum()).backward()  # decay on W only
    train_epoch(model.net, ArrayLoader((X, y), 32), model.loss, model.updater)
    W1, b1 = weights(model)
    torch.testing.assert_close(W1, W0 - 0.5 * W.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b1, b0 - 0.5 * b.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("wd", [-1e-4, float("nan"), float("inf"), "0.1"])
def test_bad_weight_decay_is_a_config_error(impl, wd):
    with pytest.raises(ConfigError, match="weight_decay must be a finite number >= 0"):
        validate(SoftmaxConfig(impl=impl, weight_decay=wd))


# --- optimisers and schedules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.5), ("momentum", 0.1), ("adam", 0.01), ("lbfgs", 1.0)])
def test_each_optimizer_trains_a_small_problem(optimizer, lr):
    config = SoftmaxConfig(impl="concise", optimizer=optimizer, lr=lr, epochs=3, standardize=optimizer != "sgd",
                           weight_decay=1e-4,
                           val_fraction=0.2)
    result = fit_softmax(config, toy_data())
    first = result.history.epochs[0].train_loss
    assert result.history.epochs[-1].train_loss < first
    assert result.val_accuracy > 0.9 and result.test_accuracy > 0.9


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizers_take_the_per_tensor_path_with_the_same_arithmetic_as_foreach(name):
    ours, reference = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    reference.load_state_dict(ours.state_dict())
    optimizer = make_optimizer(ours, name, 0.1, 0.01)
    assert all(group["foreach"] is False for group in optimizer.param_groups)
    foreach = make_optimizer(reference, name, 0.1, 0.01)
    for group in foreach.param_groups:
        group["foreach"] = True
    rng = torch.Generator().manual_seed(0)
    for _ in range(5):
        for p, q in zip(ours.parameters(), reference.parameters(), strict=True):
            p.grad = torch.randn(p.shape, generator=rng)
            q.grad = p.grad.clone()
        optimizer.step()
        foreach.step()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.bias, reference.bias, rtol=1e-6, atol=1e-7)


def test_optimizer_kinds_and_decay_groups():
    linear = torch.nn.Linear(3, 2)
    kinds = {name: type(make_optimizer(linear, name, 0.1, 0.01)).__name__ for name in ("sgd", "momentum", "adam")}
    assert kinds == {"sgd": "SGD", "momentum": "SGD", "adam": "Adam"}
    momentum = make_optimizer(linear, "momentum", 0.1, 0.01)
    assert momentum.param_groups[0]["momentum"] == 0.9 and momentum.param_groups[0]["nesterov"]
    assert [g["weight_decay"] for g in momentum.param_groups] == [0.01, 0.0]  # the bias is not decayed
    with pytest.raises(ConfigError, match="optimizer must be one of sgd, momentum, adam, lbfgs, got 'rmsprop'"):
        make_optimizer(linear, "rmsprop")
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        concise.SoftmaxRegression(optimizer="rmsprop")


@pytest.mark.parametrize("schedule", ["step", "cosine"])
@pytest.mark.parametrize("epochs", [1, 3, 8, 13])
def test_schedules_equal_torchs_schedulers(schedule, epochs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.7)
    if schedule == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for epoch in range(1, epochs + 1):
        assert lr_at(schedule, 0.7, epoch, epochs) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    assert [lr_at("step", 1.0, e, 8) for e in range(1, 9)] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_at("constant", 0.3, 5, 8) == 0.3
    with pytest.raises(ConfigError, match="schedule must be one of constant, step, cosine, got 'linear'"):
        lr_at("linear", 1.0, 1, 8)


@pytest.mark.parametrize("impl", ["scratch", "manual", "concise"])
def test_every_implementation_follows_the_schedule(impl):
    seen = []

    result_model = []
    from linear_nets.training import Callback

    class Grab(Callback):
        def on_fit_begin(self, fit):
            result_model.append(fit.model)

        def on_epoch_begin(self, epoch):
            model = result_model[0]
            seen.append(model.updater.param_groups[0]["lr"] if impl == "concise" else model.lr)

    config = SoftmaxConfig(impl=impl, lr=0.4, epochs=4, schedule="cosine", batch_size=50)
    fit_softmax(config, toy_data(100), [Grab()])
    assert seen == pytest.approx([lr_at("cosine", 0.4, e, 4) for e in range(1, 5)])


def test_config_refuses_bad_combinations_before_training():
    with pytest.raises(ConfigError, match="optimizer adam needs impl concise"):
        validate(SoftmaxConfig(impl="manual", optimizer="adam"))
    with pytest.raises(ConfigError, match="weight_decay must be a finite number >= 0"):
        validate(SoftmaxConfig(weight_decay=-1.0))
    with pytest.raises(ConfigError, match="early_stopping must be an integer >= 1"):
        validate(SoftmaxConfig(early_stopping=0, val_fraction=0.1))
    with pytest.raises(ConfigError, match="early_stopping needs a validation split"):
        validate(SoftmaxConfig(early_stopping=3))
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        fit_softmax(SoftmaxConfig(batch_size=0), toy_data())


# --- the tuner and the presets ------------------------------------------------------------------------------------


def test_tuner_picks_the_best_validation_accuracy_and_never_reads_the_test_set():
    data = toy_data(200)
    data.test = (data.test[0], torch.full((100,), 99))  # invalid labels: any test evaluation would raise
    grid = {"lr": [0.001, 0.5], "weight_decay": [0.0], "batch_size": [16, 32]}
    base = SoftmaxConfig(impl="manual", epochs=2, val_fraction=0.5)
    trials = tune_softmax(data, base, grid)
    assert len(trials) == 4
    accs = [t.val_accuracy for t in trials]
    assert accs == sorted(accs, reverse=True)
    assert trials[0].config.lr == 0.5  # the tiny learning rate barely moves in 2 epochs
    again = fit_softmax(trials[0].config, data, evaluate_test=False)
    assert again.val_accuracy == trials[0].val_accuracy  # seeded: the same fit again


def test_tuner_refuses_a_bad_grid_or_no_validation_split():
    base = SoftmaxConfig(val_fraction=0.1)
    with pytest.raises(ConfigError, match="unknown SoftmaxConfig fields: momentum"):
        grid_configs(base, {"momentum": [0.9]})
    with pytest.raises(ConfigError, match=r"lr must be a finite number > 0, got -1\.0"):
        grid_configs(base, {"lr": [0.1, -1.0]})
    with pytest.raises(ConfigError, match="grid: give at least one value of lr"):
        grid_configs(base, {"lr": []})
    with pytest.raises(ConfigError, match="needs a validation split"):
        tune_softmax(toy_data(), SoftmaxConfig())


def test_presets_are_valid_and_print_as_flags():
    for config in PRESETS.values():
        validate(config)
    assert as_flags(PRESETS["book"]) == ""
    flags = as_flags(PRESETS["best"])
    assert "--standardize" in flags and f"--optimizer {PRESETS['best'].optimizer}" in flags
    assert as_flags(replace(SoftmaxConfig(), early_stopping=4, device="cuda")) == "--early-stopping 4"


def test_fit_does_not_change_the_caller_splits():
    data = toy_data()
    before = copy.deepcopy(data)
    fit_softmax(SoftmaxConfig(epochs=1, standardize=True, val_fraction=0.2), data)
    for a, b in zip((*data.train, *data.test), (*before.train, *before.test), strict=True):
        assert torch.equal(a, b)


@pytest.mark.needs_data
def test_best_preset_beats_the_book_on_real_data():
    data = fashion_mnist()
    train_idx, val_idx = train_val_split(data.train[1], 0.1, seed=0)
    assert (len(train_idx), len(val_idx), len(data.test[1])) == (54000, 6000, 10000)
    assert torch.bincount(data.train[1][val_idx]).tolist() == [600] * 10
    result = fit_softmax(PRESETS["best"], data)
    assert result.test_accuracy >= 0.84


@pytest.mark.parametrize("impl", IMPLS)
def test_standardized_model_saves_and_loads_its_mean_and_std(impl):
    images, _ = toy_images(20)
    model = Standardized(IMPLS[impl](784, 10, generator=torch.Generator().manual_seed(0)), Standardizer.fit(images))
    tensors = model.state_tensors()
    assert set(tensors) == {"W", "b", "mean", "std"}
    fresh = Standardized(IMPLS[impl](784, 10, generator=torch.Generator().manual_seed(9)),
                         Standardizer(torch.zeros(784), torch.ones(784)))  # fmt: skip
    fresh.load_state_tensors(tensors)
    X = images.float() / 255
    torch.testing.assert_close(fresh.net(X), model.net(X))
    assert fresh.to("cpu") is fresh and torch.equal(fresh.std, model.std)
