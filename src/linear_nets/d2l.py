"""The book's `d2l` names for chapter 3 (PyTorch edition), on this package's engine.

Change one line of the book's code, `from d2l import torch as d2l` to `from linear_nets import d2l`, and it runs
offline (no torchvision), fast (in-memory batches, one training loop) and outside Jupyter too (figures saved to PNG
files in the working directory, their paths printed). Every name delegates to the package's own implementation;
where one behaves differently from the book's, on purpose, the README's *Using the book's code* says how and why.
`plt` is matplotlib's pyplot, imported on first use: importing this module does not pick a plotting backend.

Example:
    >>> from linear_nets import d2l
    >>> X, y = d2l.synthetic_data(d2l.tensor([2, -3.4]), 4.2, 100)
    >>> d2l.size(X), d2l.reshape(y, (-1,)).shape
    (200, torch.Size([100]))
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils import data

from linear_nets import plotting, training
from linear_nets.data import fashion_mnist, synthetic
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.fashion_mnist import get_fashion_mnist_labels
from linear_nets.data.synthetic import synthetic_data
from linear_nets.losses import squared_loss
from linear_nets.plotting import set_axes, set_figsize, show_images, use_svg_display
from linear_nets.scratch.linear_regression import linreg, sgd
from linear_nets.timing import Timer
from linear_nets.training import Accumulator, evaluate_accuracy

# What `from linear_nets.d2l import *` gives: the book's names (`plt` comes through `__getattr__`, on first use).
__all__ = [
    "BOOK_EXPECTATIONS", "Accumulator", "Animator", "F", "Timer", "abs", "accuracy", "arange", "argmax", "astype",
    "concat", "cos", "cosh", "data", "evaluate_accuracy", "evaluate_loss", "exp", "eye", "float32",
    "get_dataloader_workers", "get_fashion_mnist_labels", "int32", "int64", "linreg", "linspace", "load_array",
    "load_data_fashion_mnist", "log", "matmul", "meshgrid", "nn", "normal", "np", "numpy", "ones", "plot",
    "predict_ch3", "rand", "randn", "reduce_mean", "reduce_sum", "reshape", "set_axes", "set_figsize", "sgd",
    "show_images", "sigmoid", "sin", "sinh", "size", "squared_loss", "stack", "synthetic_data", "tanh", "tensor", "to",
    "torch", "train_ch3", "train_epoch_ch3", "transpose", "use_svg_display", "zeros"
]

BOOK_EXPECTATIONS = {"train_loss": 0.5, "train_acc": 0.7, "test_acc": 0.7}
"""What the book's `train_ch3` asserts after training: train loss below, accuracies above these."""


def __getattr__(name: str) -> Any:
    """`d2l.plt`: pyplot, imported at first use (with Agg chosen when there is no display)."""
    if name == "plt":
        return plotting.pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "plt"])


# --- figures outside Jupyter --------------------------------------------------------------------------------------

_figures_saved: dict[str, int] = {}
_AUTO: Any = object()
"""`Animator(save_to=_AUTO)`: save to `<name>.png` outside Jupyter (None saves nothing)."""


def _next_figure_path(stem: str) -> Path:
    """`stem.png` in the working directory; `stem-2.png`, `stem-3.png`, ... for later figures of this process
    (numbered per process, not by what is on disk, so running a script again overwrites its own figures)."""
    count = _figures_saved[stem] = _figures_saved.get(stem, 0) + 1
    return Path.cwd() / (f"{stem}.png" if count == 1 else f"{stem}-{count}.png")


class Animator(plotting.Animator):
    """The book's Animator (d2l 3.6), `linear_nets.plotting.Animator` with the book's arguments.

    Outside Jupyter it also saves the figure to `<name>.png` in the working directory (`save_to=` another file, or
    None for none) and prints that path once, on the first `add`; the file is rewritten after every `add`, as the
    book redraws (or at most every `save_interval` seconds, and at the last x of `xlim`).

    Example:
        >>> animator = Animator(xlabel="epoch", xlim=[1, 3], legend=["loss"], save_to=None, live=False)
        >>> for epoch in range(1, 4):
        ...     animator.add(epoch, 1 / epoch)
        >>> animator.Y
        [[1.0, 0.5, 0.3333333333333333]]
    """

    def __init__(
        self,
        *args: Any,
        name: str = "animator",
        save_to: str | os.PathLike | None = _AUTO,
        save_interval: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, save_to=None if save_to is _AUTO else save_to, save_interval=save_interval, **kwargs)
        self._announce: Path | None = None
        if save_to is _AUTO and not self.live:
            self.save_to = self._announce = _next_figure_path(name)
            plotting.figure_paths(self.save_to)  # an unwritable directory fails now, not after the first epoch

    def add(self, x: Any, y: Any) -> None:
        """Append point(s), as the book's `add(x, y)`; the first call outside Jupyter says where the file is."""
        super().add(x, y)
        if self._announce is not None:
            print(f"figure saved to {self._announce}")
            self._announce = None


# --- linear regression (3.2, 3.3) ---------------------------------------------------------------------------------


def _seed_from_torch() -> int:
    """A seed drawn from torch's global generator, so `torch.manual_seed` fixes the shuffling (as with DataLoader)."""
    return int(torch.randint(0, 2**62, ()))


def load_array(data_arrays: Sequence[Tensor], batch_size: int, is_train: bool = True) -> ArrayLoader:
    """Minibatches of in-memory tensors (d2l 3.3), reshuffled every epoch when `is_train`: tuples `(X, y)` of slices.

    Example:
        >>> X, y = torch.zeros(10, 2), torch.zeros(10, 1)
        >>> [tuple(t.shape) for t in next(iter(load_array((X, y), 4)))]
        [(4, 2), (4, 1)]
    """
    generator = torch.Generator().manual_seed(_seed_from_torch())
    return synthetic.load_array(tuple(data_arrays), batch_size, is_train, generator=generator)


def evaluate_loss(net: training.Net, data_iter: Iterable, loss: training.Loss) -> float:
    """Mean loss over a dataset: sum of `loss(net(X), y)` / number of examples (d2l 4.4).

    `loss` must return one value per example (`reduction='none'`), as in the book; `y` is reshaped to the output's
    shape first, so it is meant for regression.

    Example:
        >>> X, y = torch.ones(4, 2), torch.zeros(4, 1)
        >>> evaluate_loss(lambda X: X.sum(1, keepdim=True), load_array((X, y), 3), squared_loss)
        2.0
    """
    return evaluate_accuracy(net, data_iter, lambda out, y: loss(out, y.reshape(out.shape)).sum())


# --- Fashion-MNIST (3.5) ------------------------------------------------------------------------------------------


def get_dataloader_workers() -> int:
    """4, as in the book. Our loaders keep the data in memory and ignore it: batches are slices, no workers needed."""
    return 4


def load_data_fashion_mnist(batch_size: int, resize: int | None = None) -> tuple[ArrayLoader, ArrayLoader]:
    """Fashion-MNIST as `(train_iter, test_iter)` (d2l 3.5), offline from the package's finder, in memory.

    Batches are `(X, y)`: X float32 `[batch_size, 1, 28, 28]` in [0, 1] (or `resize` x `resize`), y int64. The
    training batches are reshuffled every epoch, in an order fixed by `torch.manual_seed` when you set one."""
    return fashion_mnist.load_data_fashion_mnist(batch_size, resize, seed=_seed_from_torch())


# --- softmax regression (3.6, 3.7) --------------------------------------------------------------------------------


def accuracy(y_hat: Tensor, y: Tensor) -> float:
    """Number of correct predictions, as a Python float (d2l 3.6): sum_i [argmax_j y_hat_ij == y_i].

    Example:
        >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
        1.0
    """
    return float(training.accuracy(y_hat, y))


def train_epoch_ch3(
    net: training.Net, train_iter: Iterable, loss: training.Loss, updater: training.Updater
) -> tuple[float, float]:
    """Train one epoch; return (mean train loss, train accuracy) (d2l 3.6).

    `updater` is a `torch.optim.Optimizer` or the book's `updater(batch_size)`; `loss` gives one value per example.
    """
    return training.train_epoch(net, train_iter, loss, updater)


def _warn_below_expectations(record: training.EpochRecord) -> None:
    misses = []
    if record.train_loss >= BOOK_EXPECTATIONS["train_loss"]:
        misses.append(f"train loss {record.train_loss:.3f} (the book expects < {BOOK_EXPECTATIONS['train_loss']})")
    for name, value in (("train_acc", record.train_accuracy), ("test_acc", record.test_accuracy)):
        if value is not None and value <= BOOK_EXPECTATIONS[name]:
            misses.append(f"{name.replace('_', ' ')} {value:.3f} (the book expects > {BOOK_EXPECTATIONS[name]})")
    if misses:
        warnings.warn(
            f"after {record.epoch} epochs: {', '.join(misses)}; the book's recipe is lr 0.1, batch 256, 10 epochs",
            stacklevel=3,
        )


def train_ch3(
    net: training.Net,
    train_iter: Iterable,
    test_iter: Iterable,
    loss: training.Loss,
    num_epochs: int,
    updater: training.Updater,
) -> None:
    """Train `net` for `num_epochs`, drawing train loss, train accuracy and test accuracy after each (d2l 3.6).

    Runs `linear_nets.training.train` with an `Animator` as its per-epoch callback: live in Jupyter, saved to
    `train_ch3.png` (path printed) elsewhere. Instead of the book's asserts, a final epoch with train loss >= 0.5 or
    an accuracy <= 0.7 gives a `UserWarning`; a loss that becomes NaN or infinite raises `TrainingDiverged`.
    """
    # A PNG costs about as much as a fast epoch: written at most once a second, and after the last epoch.
    legend = ["train loss", "train acc", "test acc"]
    animator = Animator(
        xlabel="epoch", xlim=[1, num_epochs], ylim=[0.3, 0.9], legend=legend, name="train_ch3", save_interval=1.0
    )
    history = training.train(net, train_iter, test_iter, loss, num_epochs, updater, callbacks=[animator.add_epoch])
    if history.epochs:
        _warn_below_expectations(history.epochs[-1])


def predict_ch3(net: training.Net, test_iter: Iterable, n: int = 6) -> None:
    """Show the first `n` test images titled with their true and predicted labels, wrong ones in red (d2l 3.6).
    Outside Jupyter the figure is saved to `predict_ch3.png` (path printed)."""
    X, y, y_pred = training.predict(net, test_iter, n)
    fig = plotting.show_predictions(X, get_fashion_mnist_labels(y), get_fashion_mnist_labels(y_pred))
    if not plotting.in_notebook():
        path = _next_figure_path("predict_ch3")
        plotting.save_figure(fig, path)
        print(f"figure saved to {path}")


# --- plotting and the book's tensor aliases -----------------------------------------------------------------------


@functools.wraps(plotting.plot, assigned=())  # help() and IDEs show plotting.plot's signature, the book's
def plot(*args: Any, **kwargs: Any) -> None:
    """Plot data points (d2l 2.4): `linear_nets.plotting.plot`, same arguments; returns None, as the book's does."""
    plotting.plot(*args, **kwargs)


# The book's framework-neutral aliases (d2l/torch.py, "Alias defined in config.ini"), for code that writes
# `d2l.reshape(x, shape)` or `d2l.normal(0, 1, size)`.
ones, zeros, tensor, arange, meshgrid = torch.ones, torch.zeros, torch.tensor, torch.arange, torch.meshgrid
sin, sinh, cos, cosh, tanh, linspace = torch.sin, torch.sinh, torch.cos, torch.cosh, torch.tanh, torch.linspace
exp, log, normal, rand, randn, matmul = torch.exp, torch.log, torch.normal, torch.rand, torch.randn, torch.matmul
int32, int64, float32 = torch.int32, torch.int64, torch.float32
concat, stack, abs, eye, sigmoid = torch.cat, torch.stack, torch.abs, torch.eye, torch.sigmoid


def numpy(x: Tensor, *args: Any, **kwargs: Any) -> np.ndarray:
    """`x` as a numpy array, detached from autograd."""
    return x.detach().numpy(*args, **kwargs)


def _tensor_method(name: str, method: str) -> Callable[..., Any]:
    """The book's function form of a tensor method: `reduce_sum(x, *args)` calls `x.sum(*args)`."""

    def call(x: Tensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(x, method)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`x.{method}(...)`, as the book's `d2l.{name}(x, ...)`."
    return call


size = _tensor_method("size", "numel")
reshape = _tensor_method("reshape", "reshape")
to = _tensor_method("to", "to")
reduce_sum = _tensor_method("reduce_sum", "sum")
reduce_mean = _tensor_method("reduce_mean", "mean")
argmax = _tensor_method("argmax", "argmax")
astype = _tensor_method("astype", "type")
transpose = _tensor_method("transpose", "t")
