"""The one validation boundary (`linear_nets.checks`): data checked once per fit on whole tensors, at the fit's door,
never by the math it then runs."""

from __future__ import annotations

import re

import pytest
import torch

from linear_nets.checks import check_inputs, check_labels, check_minibatches
from linear_nets.errors import DataError
from linear_nets.pipeline.config import SoftmaxConfig
from linear_nets.pipeline.fit import Dataset, fit_softmax

# --- a classifier's labels and inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        (torch.tensor([0, 10]), "labels must lie in 0..9 (10 classes), got values from 0 to 10"),
        (torch.tensor([-1, 3]), "got values from -1 to 3"),
        (torch.tensor([0.0, 1.0]), "1-D integer tensor"),
        (torch.tensor([[0, 1]]), "1-D integer tensor"),
    ],
)
def test_bad_labels_raise_data_error(labels, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        check_labels(labels, 10)


def test_the_labels_are_checked_once_at_the_fit_not_by_the_losses():
    """The losses trust their labels, as the book's do (a per-batch check is a device sync per batch on a GPU);
    the fit checks the whole label tensor once, before the first step."""
    X = torch.randn(40, 3)
    with pytest.raises(DataError, match=r"labels must lie in 0\.\.2 \(3 classes\), got values from 0 to 3"):
        fit_softmax(SoftmaxConfig(epochs=1), Dataset((X, torch.arange(40) % 4), classes=["a", "b", "c"]))
    with pytest.raises(DataError, match="got 39 labels for 40 examples"):
        fit_softmax(SoftmaxConfig(epochs=1), Dataset((X, torch.arange(39) % 3), (X, torch.arange(40) % 3)))


def test_check_labels_accepts_valid_and_empty_labels():
    check_labels(torch.arange(10), 10)
    check_labels(torch.zeros(0, dtype=torch.int64), 10)


def test_check_inputs():
    check_inputs(torch.zeros(3, 1, 28, 28), 784)
    check_inputs(torch.zeros(3, 784), 784)
    with pytest.raises(DataError, match=r"shape \[3, 1, 32, 32\] have 1024 values per example but the model takes 784"):
        check_inputs(torch.zeros(3, 1, 32, 32), 784)
    with pytest.raises(DataError, match="floating point"):
        check_inputs(torch.zeros(3, 784, dtype=torch.uint8), 784)
    with pytest.raises(DataError, match=r"batch \[n, \.\.\.\]"):
        check_inputs(torch.zeros(784), 784)


def test_resize_needs_images_and_is_refused_before_the_first_batch():
    with pytest.raises(DataError, match=r"resize needs images of shape \[N, C, H, W\], got \[4, 6, 6\]"):
        check_minibatches(torch.zeros(4, 6, 6), 2, resize=3)
    with pytest.raises(DataError, match=r"resize needs images of shape \[N, C, H, W\], got \[4, 6\]") as e:
        fit_softmax(SoftmaxConfig(resize=3, epochs=1), Dataset((torch.rand(4, 6), torch.tensor([0, 1, 0, 1]))))
    assert e.value.fields == ("resize",)
