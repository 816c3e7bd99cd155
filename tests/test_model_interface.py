"""One model interface: logits, predict_proba, predict and state, the same for every implementation and the wrapper."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linear_nets.cli import main
from linear_nets.pipeline.config import SoftmaxConfig
from linear_nets.pipeline.fit import Dataset, build_model, fit_softmax
from linear_nets.pipeline.runs import Run

IMPLS = ("scratch", "manual", "concise")


def _reference_logits(tensors: dict, X: torch.Tensor) -> torch.Tensor:
    """O = XW + b in float64 from the saved tensors (standardising first when the model carries mean and std)."""
    X = X.reshape(X.shape[0], -1).double()
    if "mean" in tensors:
        X = (X - tensors["mean"].double()) / tensors["std"].double()
    return X @ tensors["W"].double() + tensors["b"].double()


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_logits_proba_and_predict_agree_with_a_float64_reference(impl, standardize):
    gen = torch.Generator().manual_seed(3)
    X = torch.rand(120, 1, 4, 4, generator=gen)
    y = torch.randint(0, 5, (120,), generator=gen)
    config = SoftmaxConfig(impl=impl, epochs=3, batch_size=16, lr=0.5, standardize=standardize)
    model = fit_softmax(config, Dataset((X, y), classes=list("abcde"))).model
    Xq = torch.rand(30, 1, 4, 4, generator=gen)
    reference = _reference_logits(model.state_tensors(), Xq)
    torch.testing.assert_close(model.logits(Xq).double(), reference, rtol=1e-5, atol=1e-5)
    proba = model.predict_proba(Xq)
    torch.testing.assert_close(proba.double(), F.softmax(reference, dim=1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(proba.sum(1), torch.ones(30))
    assert torch.equal(model.predict(Xq), reference.argmax(1))


@pytest.mark.parametrize("impl", IMPLS)
def test_state_round_trips_into_a_model_rebuilt_from_the_config(impl):
    config = SoftmaxConfig(impl=impl, standardize=True, seed=4)
    trained = build_model(config, 16, 3)
    trained.load_state_tensors({**trained.state_tensors(), "mean": torch.rand(16), "std": torch.rand(16) + 0.5})
    fresh = build_model(SoftmaxConfig(impl=impl, standardize=True, seed=9), 16, 3)
    fresh.load_state_tensors(trained.state_tensors())
    X = torch.rand(7, 16)
    assert torch.equal(fresh.logits(X), trained.logits(X))


def test_predict_an_image_file_gives_one_softmax_whatever_the_implementation(install_fake_fashion_mnist, capsys):
    """`train softmax --impl scratch --standardize` then `predict RUN image.png` printed a probability of softmax
    applied twice (the scratch model's net ends in softmax, and predict applied another): it must be softmax(O)."""
    from matplotlib import image as mpimg

    data = install_fake_fashion_mnist()
    picture = np.random.default_rng(0).random((28, 28))
    mpimg.imsave("garment.png", picture, cmap="gray", vmin=0, vmax=1)
    shown = {}
    for impl in IMPLS:
        argv = ["train", "softmax", "--impl", impl, "--standardize", "--epochs", "3", "--batch-size", "8"]
        assert main([*argv, "--lr", "0.02", "--data-dir", str(data), "--out", impl]) == 0
        capsys.readouterr()
        assert main(["predict", impl, "garment.png"]) == 0
        line = capsys.readouterr().out.strip()
        name, percent = re.fullmatch(r"garment\.png: (.+) \((\d+\.\d)%\)", line).groups()
        tensors, _ = Run.open(impl).load_model()
        x = torch.from_numpy(mpimg.imread("garment.png")[..., :3].mean(axis=2).astype(np.float32))[None]
        proba = F.softmax(_reference_logits(tensors, x), dim=1)[0]
        assert float(percent) == pytest.approx(100 * proba.max().item(), abs=0.051), impl
        shown[impl] = (name, float(percent))
    # one seed: the three implementations trained the same model, so they say the same
    assert len({name for name, _ in shown.values()}) == 1
    assert max(p for _, p in shown.values()) - min(p for _, p in shown.values()) <= 0.2
