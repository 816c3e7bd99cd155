"""The figures of the chapter's notes (d2l 3.1), each a function returning a matplotlib Figure: the numbers come from
the package, this module only draws (`linear-nets plot losses|normal|regression|vectorization` saves them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from linear_nets.diagnostics import to_numpy
from linear_nets.plotting import plot, subplots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOSS_PANELS = (("squared", "squared"), ("l1", "absolute (L1)"), ("huber", "Huber"))
"""(name in `linear_nets.losses.get_loss`, panel title), left to right."""
LOSS_SERIES = ("loss l(r)", "likelihood exp(-l(r))", "derivative dl/dr")
NORMAL_PARAMS = ((0.0, 1.0), (0.0, 2.0), (3.0, 1.0))
"""The book's (mu, sigma) pairs in 3.1.3."""


def losses_figure(delta: float = 1.0, limit: float = 3.0, num: int = 601) -> Figure:
    """Squared, absolute and Huber loss, one panel each: the loss l(r), its likelihood exp(-l(r)) and dl/dr.

    r = y_hat - y runs over [-limit, limit]. The squared loss grows fast and its derivative grows with r (outliers
    pull hard); the absolute loss's derivative is ±1 (robust, but a kink at 0); Huber is quadratic inside
    [-delta, delta] and linear outside, with a derivative clipped to ±1. The likelihoods are the Gaussian, the
    Laplace and the in-between density each loss stands for (unnormalised). `num` points are drawn.

    Example:
        >>> fig = losses_figure()
        >>> [ax.get_title() for ax in fig.axes]
        ['squared', 'absolute (L1)', 'Huber (δ=1)']
    """
    import torch

    from linear_nets.losses import get_loss

    r = torch.linspace(-limit, limit, num, dtype=torch.float64)
    y = torch.zeros_like(r)
    fig, axes = subplots(1, len(LOSS_PANELS), figsize=(10.5, 3.2), layout="constrained")
    for ax, (name, title) in zip(axes, LOSS_PANELS, strict=True):
        loss = get_loss(name, delta=delta, reduction="none")
        series = [loss.value(r, y), loss.likelihood(r, y), loss.derivative(r, y)]
        plot(r, series, xlabel="r = y_hat - y", ylim=(-1.5, 3.0), axes=ax)
        ax.set_title(f"{title} (δ={delta:g})" if name == "huber" else title)
    # One legend for the three panels, below them, where it hides no curve.
    fig.legend(axes[0].get_lines(), LOSS_SERIES, loc="outside lower center", ncol=len(LOSS_SERIES), frameon=False)
    return fig


def normal_figure(params: Sequence[tuple[float, float]] = NORMAL_PARAMS, limit: float = 7.0) -> Figure:
    """Normal densities p(x) = exp(-(x - mu)² / (2 sigma²)) / sqrt(2 pi sigma²), one line per (mu, sigma) (d2l 3.1.3).

    Changing mu shifts the bell; a larger sigma widens and flattens it.

    Example:
        >>> fig = normal_figure([(0, 1), (1, 2)])
        >>> len(fig.axes[0].get_lines())
        2
    """
    import torch

    from linear_nets.demonstrations import normal

    x = torch.linspace(-limit, limit, 1401, dtype=torch.float64)
    fig, (ax,) = subplots(figsize=(4.5, 2.5), layout="constrained")
    legend = [f"mean {mu:g}, std {sigma:g}" for mu, sigma in params]
    plot(x, [normal(x, mu, sigma) for mu, sigma in params], xlabel="x", ylabel="p(x)", legend=legend, axes=ax)
    return fig


def regression_figure(
    features: Any, labels: Any, w: float, b: float, true_w: float | None = None, true_b: float | None = None
) -> Figure:
    """One-feature regression data (`[n]` or `[n, 1]`) as dots, the fitted line y = w x + b, and the true line
    y = true_w x + true_b when given.

    Example:
        >>> import torch
        >>> x = torch.linspace(0, 1, 20)
        >>> fig = regression_figure(x, 2 * x + 1, w=2.0, b=1.0)
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['data', 'fit: y = 2x + 1']
    """
    x, y = to_numpy(features), to_numpy(labels)
    if x.ndim == 2 and x.shape[1] != 1:
        raise ValueError(f"regression_figure draws one feature, got features of shape {tuple(x.shape)}")
    x, y = x.reshape(-1), y.reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"got {x.shape[0]} features but {y.shape[0]} labels")
    fig, (ax,) = subplots(figsize=(4.0, 3.0), layout="constrained")
    ax.scatter(x, y, s=6, alpha=0.6, label="data")
    grid = [float(x.min()), float(x.max())]
    ax.plot(grid, [w * g + b for g in grid], "r-", label=f"fit: y = {w:.3g}x + {b:.3g}")
    if true_w is not None and true_b is not None:
        ax.plot(grid, [true_w * g + true_b for g in grid], "k--", label=f"true: y = {true_w:.3g}x + {true_b:.3g}")
    ax.set(xlabel="x", ylabel="y")
    ax.legend()
    ax.grid(True)
    return fig


def vectorization_figure(seconds: Mapping[str, float]) -> Figure:
    """Bar chart of run times (log scale, each bar labelled in ms): e.g. a Python loop vs one vectorised call.

    Example:
        >>> fig = vectorization_figure({"for loop": 3e-3, "vectorised": 4e-6})
        >>> len(fig.axes[0].patches)
        2
    """
    if not seconds or any(not s > 0 for s in seconds.values()):
        raise ValueError(f"need at least one positive time in seconds, got {dict(seconds)}")
    fig, (ax,) = subplots(figsize=(4.0, 3.0), layout="constrained")
    names, values = list(seconds), [1e3 * s for s in seconds.values()]
    bars = ax.bar(names, values, color=["tab:red", "tab:blue", "tab:green", "tab:orange"][: len(names)])
    ax.bar_label(bars, labels=[f"{v:.3g} ms" for v in values])
    ax.set(yscale="log", ylabel="time (ms, log scale)", ylim=(min(values) / 3, max(values) * 5))
    if len(values) > 1:
        ax.set_title(f"{names[values.index(min(values))]}: {max(values) / min(values):.0f}x faster")
    return fig
