"""The three softmax implementations save and load the same tensors, so a model file is implementation-free."""

from __future__ import annotations

import pytest
import torch

from linear_nets.concise import softmax_regression as concise
from linear_nets.manual import softmax_regression as manual
from linear_nets.scratch import softmax_regression as scratch

IMPLS = {"scratch": scratch.SoftmaxRegression, "manual": manual.SoftmaxRegression, "concise": concise.SoftmaxRegression}


def _logits(model, X):
    with torch.no_grad():
        out = model.net(X)
    # the scratch model returns probabilities; compare in log space so all three are logits up to a constant
    return out.log() if isinstance(model, scratch.SoftmaxRegression) else out


@pytest.mark.parametrize("source", IMPLS)
@pytest.mark.parametrize("target", IMPLS)
def test_state_moves_between_implementations(source, target):
    X = torch.rand(16, 1, 5, 5)
    trained = IMPLS[source](25, 4, generator=torch.Generator().manual_seed(1))
    trained.load_state_tensors({"W": torch.randn(25, 4), "b": torch.randn(4)})
    fresh = IMPLS[target](25, 4, generator=torch.Generator().manual_seed(2))
    fresh.load_state_tensors(trained.state_tensors())
    state = fresh.state_tensors()
    assert state["W"].shape == (25, 4) and state["b"].shape == (4,)
    assert torch.equal(state["W"], trained.state_tensors()["W"])
    expected = torch.log_softmax(_logits(trained, X), dim=1)
    torch.testing.assert_close(torch.log_softmax(_logits(fresh, X), dim=1), expected, rtol=1e-5, atol=1e-5)


def test_same_seed_gives_the_same_start_in_every_implementation():
    states = [cls(784, 10, generator=torch.Generator().manual_seed(0)).state_tensors() for cls in IMPLS.values()]
    for state in states[1:]:
        assert torch.equal(state["W"], states[0]["W"]) and torch.equal(state["b"], states[0]["b"])


def test_state_tensors_are_detached_copies_in_value_not_live_autograd_leaves():
    model = scratch.SoftmaxRegression(4, 3)
    assert not model.state_tensors()["W"].requires_grad
