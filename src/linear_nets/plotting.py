"""Plots that work everywhere: live in Jupyter, in an IDE window, or saved to PNG/SVG from a terminal (d2l 3.1-3.7).

pyplot is imported at the first plot, never with `linear_nets`: importing it picks a GUI backend, which is slow and
fails without a display (`pyplot()` then picks Agg). The book's `Animator` only works inside Jupyter; ours redraws
in place in a notebook, updates a window under an interactive backend, and keeps `save_to=` files up to date.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linear_nets.atomic import atomic_open
from linear_nets.diagnostics import to_numpy
from linear_nets.errors import WriteError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from linear_nets.training import EpochRecord, History

DEFAULT_FMTS = ("-", "m--", "g-.", "r:")
"""d2l's line formats: solid, magenta dashed, green dash-dot, red dotted."""
FIGURE_FORMATS = (".png", ".svg")
WRONG_COLOR = "red"
HISTORY_LABELS = {"train_loss": "train loss", "train_accuracy": "train acc", "val_accuracy": "val acc",
                  "test_accuracy": "test acc"}  # fmt: skip


# --- backend and display ----------------------------------------------------------------------------------------


def pyplot() -> Any:
    """Import pyplot, choosing Agg first when nobody chose a backend and there is no display (macOS and Windows
    always have one; X11 and Wayland set their variable)."""
    display = sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND") and not display:
        import matplotlib

        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel), False in a terminal, IDE or plain IPython."""
    ipython = sys.modules.get("IPython")  # a kernel has always imported it; never import it ourselves
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def _interactive_backend() -> bool:
    """True when pyplot's backend draws in a window (Tk, Qt, macOS, ...), False for Agg, SVG, inline and the like."""
    backend = pyplot().get_backend().lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        from matplotlib import rcsetup

        interactive = [b.lower() for b in rcsetup.interactive_bk]
    return backend in interactive


def use_svg_display() -> None:
    """Draw Jupyter's inline figures as SVG, sharp at any zoom (d2l). Does nothing outside a Jupyter kernel."""
    if in_notebook():
        from matplotlib_inline import backend_inline  # installed with every Jupyter kernel (ipykernel needs it)

        backend_inline.set_matplotlib_formats("svg")


def set_figsize(figsize: tuple[float, float] = (3.5, 2.5)) -> None:
    """Set matplotlib's default figure size in inches for figures made afterwards (d2l; a global setting)."""
    use_svg_display()
    pyplot().rcParams["figure.figsize"] = figsize


def set_axes(
    axes: Axes,
    xlabel: str | None,
    ylabel: str | None,
    xlim: Sequence[float] | None,
    ylim: Sequence[float] | None,
    xscale: str,
    yscale: str,
    legend: Sequence[str] | None,
) -> None:
    """Label, limit and scale `axes`, add the legend (if any) and a grid (d2l)."""
    axes.set(xlabel=xlabel, ylabel=ylabel, xscale=xscale, yscale=yscale, xlim=xlim, ylim=ylim)  # in this order
    if legend:
        axes.legend(legend)
    axes.grid(True)


def subplots(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (3.5, 2.5), **kwargs: Any
) -> tuple[Figure, Any]:
    """A new figure and its axes as a flat array, `nrows * ncols` long (`kwargs` go to pyplot's `subplots`)."""
    use_svg_display()
    fig, axes = pyplot().subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)
    return fig, axes.flatten()


# --- plot -------------------------------------------------------------------------------------------------------


def _has_one_axis(X: Any) -> bool:
    """True when X is one series (a 1-d array or a flat list), not a list of series."""
    return (hasattr(X, "ndim") and X.ndim == 1) or (
        isinstance(X, list) and not (len(X) > 0 and hasattr(X[0], "__len__"))
    )


def plot(
    X: Any,
    Y: Any = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: Sequence[str] | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    xscale: str = "linear",
    yscale: str = "linear",
    fmts: Sequence[str] = DEFAULT_FMTS,
    figsize: tuple[float, float] = (3.5, 2.5),
    axes: Axes | None = None,
) -> Axes:
    """Plot one or several series (d2l).

    `plot(Y)` draws each series of Y against its index; `plot(X, Y)` draws Y against X, where X is one series
    shared by every Y or one X per Y. Series may be lists, numpy arrays or tensors. Draws on a new figure of
    `figsize` unless `axes` is given, and returns the axes drawn on (the figure is `axes.figure`).

    Example:
        >>> import numpy as np
        >>> x = np.arange(0, 3, 0.1)
        >>> ax = plot(x, [x**2, 2 * x - 3], "x", "f(x)", legend=["f(x)", "tangent at x=1"])
        >>> len(ax.get_lines())
        2
    """
    if axes is None:
        _, (axes,) = subplots(figsize=figsize)
    X = to_numpy(X) if hasattr(X, "ndim") else X  # tensors and arrays; lists stay lists of series
    Y = to_numpy(Y) if hasattr(Y, "ndim") else Y
    if _has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [range(len(y)) for y in X], X
    elif _has_one_axis(Y):
        Y = [Y]
    if len(X) == 1 and len(Y) > 1:
        X = X * len(Y)
    if len(X) != len(Y):
        raise ValueError(f"got {len(X)} x series for {len(Y)} y series: give one x shared by all, or one per y")
    for x, y, fmt in zip(X, Y, itertools.cycle(fmts), strict=False):  # formats repeat (d2l dropped a fifth series)
        axes.plot(to_numpy(x), to_numpy(y), fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
    return axes


# --- saving -----------------------------------------------------------------------------------------------------


def figure_paths(path: str | os.PathLike) -> list[Path]:
    """Check `path` and return the files `save_figure(fig, path)` would write.

    `path` itself for .png/.svg; both formats for a name without extension (`runs/curves` -> curves.png and
    curves.svg). Call it before any work: a bad path (another extension, a directory that is missing or not
    writable) raises ConfigError at once and writes nothing.

    Example:
        >>> [p.name for p in figure_paths("curves")]
        ['curves.png', 'curves.svg']
    """
    from linear_nets.checks import check_output

    path = Path(path)
    check_output(path, FIGURE_FORMATS)
    return [path] if path.suffix else [path.with_name(path.name + ext) for ext in FIGURE_FORMATS]


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """Write `fig` to `path` (.png, .svg, or a name without extension for both), atomically; return the paths.

    Raises ConfigError as `figure_paths` does, and WriteError when the write fails (a full disk, a read-only place);
    no file is left half-written.

    Example:
        >>> import tempfile, pathlib
        >>> fig = plot([0, 1], [0, 1]).figure
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     [p.name for p in save_figure(fig, pathlib.Path(tmp) / "line")]
        ['line.png', 'line.svg']
    """
    paths = figure_paths(path)
    for p in paths:
        fmt = p.suffix[1:].lower()
        # No timestamp and fixed element ids in SVG files: the same figure gives the same bytes (diffable runs).
        metadata = {"Date": None} if fmt == "svg" else None
        try:
            with atomic_open(p, "wb") as f, pyplot().rc_context({"svg.hashsalt": "linear-nets"}):
                fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        except WriteError:  # full disk, read-only: already one line naming the file
            raise
        except OSError as exc:  # the same line for a failure the atomic writer did not name
            raise WriteError(p, exc.errno or errno.EIO) from exc
    return paths


# --- Animator ---------------------------------------------------------------------------------------------------


class Animator(contextlib.AbstractContextManager):
    """Draw data incrementally: live in Jupyter, in an IDE window, or into files from a terminal (d2l 3.6).

    The axes arguments are `plot`'s; data is drawn on the first of the `nrows` x `ncols` axes. `save_to`, a file
    (.png/.svg) or a stem (both formats), is rewritten atomically as points arrive (None: call `save(path)`
    yourself). Writing both formats costs 50-100 ms, as much as a whole fast epoch, so after the first `add` the
    files are rewritten at most every `save_interval` seconds (0: after every `add`), and always when x reaches the
    right end of `xlim` (the last epoch); `close()` (or leaving a `with` block) writes whatever is pending. `live`
    forces the notebook display on or off; None detects a Jupyter kernel.

    Example (as the callback of `linear_nets.training.train`):
        >>> animator = epoch_animator(num_epochs=3)
        >>> for epoch, (loss, acc) in enumerate([(0.9, 0.7), (0.6, 0.8), (0.5, 0.82)], start=1):
        ...     animator.add(epoch, (loss, acc, acc - 0.01))
        >>> [len(line.get_xdata()) for line in animator.axes[0].get_lines()]
        [3, 3, 3]
    """

    def __init__(
        self,
        xlabel: str | None = None,
        ylabel: str | None = None,
        legend: Sequence[str] | None = None,
        xlim: Sequence[float] | None = None,
        ylim: Sequence[float] | None = None,
        xscale: str = "linear",
        yscale: str = "linear",
        fmts: Sequence[str] = DEFAULT_FMTS,
        nrows: int = 1,
        ncols: int = 1,
        figsize: tuple[float, float] = (3.5, 2.5),
        *,
        save_to: str | os.PathLike | None = None,
        save_interval: float = 1.0,
        live: bool | None = None,
    ) -> None:
        if save_to is not None:
            figure_paths(save_to)  # reject a bad extension now, not after the first epoch
        self.save_to, self.save_interval, self.xlim = save_to, save_interval, xlim
        self._last_save, self._pending, self._shown = -math.inf, False, False
        self.live = in_notebook() if live is None else live
        plt = pyplot()  # first: it may choose the backend `_interactive_backend` reads
        # A window needs pyplot's figure manager; otherwise a plain Figure keeps pyplot's global list clean and
        # lets Jupyter's inline backend leave it alone (we display it ourselves). Constrained: labels stay inside.
        self.window = not self.live and _interactive_backend()
        from matplotlib.figure import Figure

        new_figure = plt.figure if self.window else Figure
        self.fig = new_figure(figsize=figsize, layout="constrained")
        self.axes = list(self.fig.subplots(nrows, ncols, squeeze=False).flatten())
        self.axis_settings = {"xlabel": xlabel, "ylabel": ylabel, "legend": legend, "xlim": xlim, "ylim": ylim,
                              "xscale": xscale, "yscale": yscale}  # fmt: skip
        set_axes(self.axes[0], **self.axis_settings)
        self.X: list[list[float]] | None = None
        self.Y: list[list[float]] | None = None
        self.fmts = fmts

    def add(self, x: Any, y: Any) -> None:
        """Append point(s): `y` one value or one per series; `x` one value shared by all, or one per series. None in
        `x` or `y` skips that series for this call (e.g. a test metric not computed)."""
        if _is_scalar(y):
            y = [y]
        n = len(y)
        if _is_scalar(x):
            x = [x] * n
        if self.X is None or self.Y is None:
            self.X, self.Y = [[] for _ in range(n)], [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y, strict=True)):
            if a is not None and b is not None:
                self.X[i].append(float(a))
                self.Y[i].append(float(b))
        self.axes[0].cla()
        plot(self.X, self.Y, fmts=self.fmts, axes=self.axes[0], **self.axis_settings)  # its set_axes: the settings
        self._refresh()
        if self.save_to is not None:
            self._pending = True
            last = self.xlim is not None and all(a is None or a >= self.xlim[1] for a in x)
            if last or time.monotonic() - self._last_save >= self.save_interval:
                self._write()

    def _write(self) -> None:
        self.save(self.save_to)
        self._last_save, self._pending = time.monotonic(), False

    def close(self) -> None:
        """Write `save_to` if points arrived since it was last written; close the window, if any."""
        if self._pending:
            self._write()
        if self.window:
            pyplot().close(self.fig)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_epoch(self, record: EpochRecord) -> None:
        """`add(epoch, (train loss, train accuracy, test accuracy))`: pass as `train(..., callbacks=[...])`."""
        self.add(record.epoch, (record.train_loss, record.train_accuracy, record.test_accuracy))

    def save(self, path: str | os.PathLike) -> list[Path]:
        """Write the current figure to `path` (.png, .svg, or a stem for both) atomically; return the paths."""
        return save_figure(self.fig, path)

    def _refresh(self) -> None:
        if self.live:
            from IPython import display

            buffer = io.StringIO()
            self.fig.savefig(buffer, format="svg", bbox_inches="tight")
            # wait=True: no flicker. Cleared before displaying (d2l: after), so what the cell prints after training
            # does not wipe the final figure.
            display.clear_output(wait=True)
            display.display(display.SVG(buffer.getvalue()))
        elif self.window:
            if not self._shown:
                pyplot().show(block=False)
                self._shown = True
            self.fig.canvas.draw_idle()
            self.fig.canvas.flush_events()


def _is_scalar(v: Any) -> bool:
    """A number, or a 0-d tensor/array (which has `__len__` but no length)."""
    return not hasattr(v, "__len__") or getattr(v, "ndim", None) == 0


def epoch_animator(
    num_epochs: int,
    legend: Sequence[str] = ("train loss", "train acc", "test acc"),
    ylim: Sequence[float] | None = None,
    **kwargs: Any,
) -> Animator:
    """An `Animator` (`kwargs`: its `save_to=`, `live=`, ...) for `train(..., callbacks=[animator.add_epoch])`: x is
    the epoch 1..num_epochs (d2l 3.6)."""
    return Animator(xlabel="epoch", xlim=[1, num_epochs], ylim=ylim, legend=list(legend), **kwargs)


# --- images -----------------------------------------------------------------------------------------------------


def show_images(
    imgs: Any, num_rows: int, num_cols: int, titles: Sequence[str] | None = None, scale: float = 1.5
) -> Any:
    """Draw `imgs` in a `num_rows` x `num_cols` grid of `scale`-inch cells, one title above each image (d2l 3.5).

    `imgs` is a tensor or array `[N, H, W]` or `[N, 1, H, W]`, or a list of `[H, W]` images; the first
    `num_rows * num_cols` are drawn (fewer leave the last cells empty). Returns the flat array of axes, as d2l does;
    the figure is `axes[0].figure`.

    Example:
        >>> import torch
        >>> axes = show_images(torch.rand(6, 28, 28), 2, 3, titles=list("abcdef"))
        >>> len(axes), axes[0].get_title()
        (6, 'a')
    """
    if num_rows <= 0 or num_cols <= 0:
        raise ValueError(f"num_rows and num_cols must be positive, got {num_rows} x {num_cols}")
    fig, axes = subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale))
    for i, (ax, img) in enumerate(zip(axes, imgs, strict=False)):
        img = to_numpy(img, dtype=None)  # an RGB image keeps its 0-255 integers
        if img.ndim == 3 and img.shape[0] == 1:  # [1, H, W] channel-first grey image
            img = img[0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    for ax in axes:
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
    fig.tight_layout()
    return axes


def show_predictions(
    imgs: Any,
    true_labels: Sequence[str],
    pred_labels: Sequence[str],
    num_rows: int = 1,
    num_cols: int | None = None,
    scale: float = 1.5,
    probabilities: Sequence[float] | None = None,
) -> Figure:
    """A grid of images titled "true" over "predicted"; wrong predictions get a red title (d2l `predict_ch3`).

    `num_cols` defaults to fitting every image in `num_rows` rows; `probabilities`, the probability the model gave
    each predicted class, are shown after it ("coat 87%").

    Example:
        >>> import torch
        >>> fig = show_predictions(torch.rand(2, 28, 28), ["bag", "coat"], ["bag", "shirt"], probabilities=[0.9, 0.4])
        >>> fig.axes[1].get_title()
        'coat\\nshirt 40%'
    """
    if len(true_labels) != len(pred_labels):
        raise ValueError(f"got {len(true_labels)} true labels but {len(pred_labels)} predicted ones")
    if probabilities is not None and len(probabilities) != len(pred_labels):
        raise ValueError(f"got {len(probabilities)} probabilities for {len(pred_labels)} predictions")
    if num_cols is None:
        num_cols = max(1, -(-len(true_labels) // num_rows))
    axes = show_images(imgs, num_rows, num_cols, scale=scale)
    return title_predictions(axes, true_labels, pred_labels, probabilities)


def title_predictions(
    axes: Any, true_labels: Sequence[str], pred_labels: Sequence[str], probabilities: Sequence[float] | None = None
) -> Figure:
    """Title the images `show_images` drew (its `axes`) as `show_predictions` does; return their figure. Apart so that
    the images can be drawn before the model that predicts them has finished training (`cli.figure_process`).

    Example:
        >>> import torch
        >>> fig = title_predictions(show_images(torch.rand(2, 28, 28), 1, 2), ["bag", "coat"], ["bag", "bag"])
        >>> fig.axes[1].get_title(), fig.axes[1].title.get_color() == WRONG_COLOR
        ('coat\\nbag', True)
    """
    titles = [f"{t}\n{p}" for t, p in zip(true_labels, pred_labels, strict=True)]
    if probabilities is not None:
        titles = [f"{title} {float(q):.0%}" for title, q in zip(titles, probabilities, strict=True)]
    for ax, title, t, p in zip(axes, titles, true_labels, pred_labels, strict=False):
        ax.set_title(title, fontsize=9)
        if t != p:
            ax.title.set_color(WRONG_COLOR)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_history(
    history: History | Sequence[dict[str, Any]],
    labels: dict[str, str] | None = None,
    ylim: Sequence[float] | None = None,
    figsize: tuple[float, float] = (3.5, 2.5),
) -> Figure:
    """Training curves of a finished run (the picture `epoch_animator` drew live): each column of `history` (a
    `History`, or its rows `history.as_dicts()`) named in `labels`, against the epoch; columns whose values are all
    None (no metric, no test set) are left out."""
    labels = labels or HISTORY_LABELS
    rows = history.as_dicts() if hasattr(history, "as_dicts") else history
    epochs = [row["epoch"] for row in rows]
    series = {name: [row.get(name) for row in rows] for name in labels}
    kept = [name for name, values in series.items() if any(v is not None for v in values)]
    axes = plot(
        [[e for e, v in zip(epochs, series[name], strict=True) if v is not None] for name in kept],
        [[v for v in series[name] if v is not None] for name in kept],
        xlabel="epoch",
        legend=[labels[name] for name in kept],
        xlim=[min(epochs), max(max(epochs), min(epochs) + 1)] if epochs else None,
        ylim=ylim,
        figsize=figsize,
    )
    return axes.figure


# --- what the model learned (numbers from `linear_nets.diagnostics`) ---------------------------------------------

WEIGHT_CMAP = "RdBu_r"
"""Diverging colour map for weights: red positive, blue negative, white 0."""


def class_weight_images(W: Any, image_shape: tuple[int, int]) -> Any:
    """Each class's weights as an image: `W` `[H * W_img, K]` (inputs x classes, as the models store it) becomes a
    numpy array `[K, H, W_img]`, pixel (i, j) of class k being the weight of input pixel i * W_img + j.

    Example:
        >>> class_weight_images([[1.0, -1.0], [2.0, 0.0], [3.0, 0.5], [4.0, 0.0]], (2, 2)).shape
        (2, 2, 2)
    """
    weights = to_numpy(W)
    if weights.ndim != 2 or weights.shape[0] != image_shape[0] * image_shape[1]:
        raise ValueError(f"W must be [{image_shape[0]} * {image_shape[1]} inputs, classes], got {list(weights.shape)}")
    return weights.T.reshape(weights.shape[1], *image_shape)


def weight_limit(W: Any) -> float:
    """The colour scale's half-width: the largest |weight| (1 when all are 0), shared by every class, so that the
    same colour is the same weight in every panel and white is 0."""
    top = float(np.abs(to_numpy(W)).max(initial=0.0))
    return top if top > 0 else 1.0


def plot_class_weights(
    W: Any,
    classes: Sequence[str],
    image_shape: tuple[int, int] | None = (28, 28),
    feature_names: Sequence[str] | None = None,
    ncols: int = 5,
    scale: float = 1.6,
) -> Figure:
    """What a linear classifier learned: each class's weights, coloured on one diverging scale centred on 0.

    `W` is `[inputs, classes]` (a softmax model's `W`), `classes` names its columns. For images (`image_shape` given,
    and `W` has that many inputs) one panel per class, `ncols` to a row, `scale` inches each, shows the weight of
    each pixel: red pixels raise the class's score, blue ones lower it (a trouser's two legs, a bag's handle). For a
    table (`feature_names` given, or inputs that are not an image), one class x feature heat map.

    Example:
        >>> import torch
        >>> fig = plot_class_weights(torch.randn(784, 10), [str(k) for k in range(10)])
        >>> len(fig.axes), fig.axes[1].get_title()  # 10 panels and the colour bar
        (11, '1')
    """
    weights = to_numpy(W)
    if weights.ndim != 2 or weights.shape[1] != len(classes):
        raise ValueError(f"W must be [inputs, {len(classes)} classes], got {list(weights.shape)}")
    limit = weight_limit(weights)
    if image_shape is not None and feature_names is None and weights.shape[0] == math.prod(image_shape):
        rows = -(-len(classes) // ncols)
        fig, axes = subplots(rows, ncols, figsize=(ncols * scale + 0.8, rows * scale * 1.1), layout="constrained")
        pictures = class_weight_images(weights, image_shape)
        for k, ax in enumerate(axes):
            ax.set_axis_off()
            if k < len(classes):
                shown = ax.imshow(pictures[k], cmap=WEIGHT_CMAP, vmin=-limit, vmax=limit)
                ax.set_title(classes[k], fontsize=9)
        fig.colorbar(shown, ax=axes, shrink=0.8, label="weight")
        return fig
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(weights.shape[0])]
    if len(names) != weights.shape[0]:
        raise ValueError(f"got {len(names)} feature names for {weights.shape[0]} inputs")
    width = min(16.0, 2.0 + 0.35 * len(names))
    fig, (ax,) = subplots(figsize=(width, 1.2 + 0.35 * len(classes)), layout="constrained")
    shown = ax.imshow(weights.T, cmap=WEIGHT_CMAP, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), list(classes), fontsize=8)
    ax.set_xlabel("feature")
    fig.colorbar(shown, ax=ax, label="weight")
    return fig


def show_mistakes(
    imgs: Any,
    true_labels: Sequence[str],
    pred_labels: Sequence[str],
    probabilities: Sequence[float],
    ncols: int = 6,
    scale: float = 1.6,
) -> Figure:
    """The model's mistakes, each image titled with its true class, the predicted one and the probability the model
    gave it (pass them most confident first: `diagnostics.confident_mistakes`).

    Example:
        >>> import torch
        >>> fig = show_mistakes(torch.rand(2, 28, 28), ["bag", "coat"], ["shirt", "pullover"], [0.97, 0.61])
        >>> fig.axes[0].get_title()
        'true bag\\nshirt 97%'
    """
    if not true_labels:
        fig = pyplot().figure(figsize=(4, 0.6))
        fig.text(0.5, 0.5, "no mistakes", ha="center", va="center")
        return fig
    ncols = max(1, min(ncols, len(true_labels)))
    true_labels = [f"true {t}" for t in true_labels]  # never a predicted label: every title is red
    return show_predictions(imgs, true_labels, pred_labels, -(-len(true_labels) // ncols), ncols, scale, probabilities)


def plot_per_class(scores: Sequence[Any], figsize: tuple[float, float] | None = None) -> Figure:
    """Precision, recall and F1 of each class as grouped horizontal bars, support beside the class name
    (`scores`: `diagnostics.per_class_scores`).

    Example:
        >>> from linear_nets.diagnostics import per_class_scores
        >>> fig = plot_per_class(per_class_scores([[3, 1], [0, 2]], ["a", "b"]))
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['a (4)', 'b (2)']
    """
    y = np.arange(len(scores))
    fig, (ax,) = subplots(figsize=figsize or (5.5, 0.9 + 0.42 * len(scores)), layout="constrained")
    for i, (field, color) in enumerate((("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green"))):
        ax.barh(y + (i - 1) * 0.27, [getattr(s, field) for s in scores], height=0.27, color=color,
                label="F1" if field == "f1" else field)  # fmt: skip
    ax.set_yticks(y, [f"{s.name} ({s.support})" for s in scores])
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="score (support in brackets)")
    ax.grid(True, axis="x")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    return fig


def plot_reliability(reliability: Any, figsize: tuple[float, float] = (4.2, 4.0)) -> Figure:
    """A reliability diagram: each confidence bin's accuracy (bars) against the diagonal of perfect calibration, and
    the expected calibration error in the title (`reliability`: `diagnostics.reliability`). Bars below the diagonal:
    the model is more confident than it is right.

    Example:
        >>> from linear_nets.diagnostics import reliability
        >>> fig = plot_reliability(reliability([[0.9, 0.1], [0.3, 0.7]], [0, 0], bins=5))
        >>> fig.axes[0].get_title()
        'expected calibration error 0.400'
    """
    fig, (ax,) = subplots(figsize=figsize, layout="constrained")
    edges = np.asarray(reliability.edges)
    width = np.diff(edges)
    accuracy = np.nan_to_num(np.asarray(reliability.accuracy, dtype=float))
    confidence = np.asarray(reliability.confidence, dtype=float)
    ax.bar(edges[:-1], accuracy, width=width, align="edge", color="tab:blue", edgecolor="white", label="accuracy")
    gap = np.where(np.asarray(reliability.counts) > 0, np.nan_to_num(confidence) - accuracy, 0.0)
    ax.bar(edges[:-1], gap, bottom=accuracy, width=width, align="edge", fill=False, edgecolor="tab:red",
           hatch="///", linewidth=0.8, label="gap to mean confidence")  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (largest probability)", ylabel="accuracy")
    ax.set_title(f"expected calibration error {reliability.ece:.3f}")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_regression_diagnostics(diagnostics: Any, max_points: int = 4000) -> Figure:
    """A linear regression's three residual plots side by side (`diagnostics`: `diagnostics.regression_diagnostics`):
    residuals against fitted values (a pattern means a missing term), the normal Q-Q plot of the residuals (points
    off the line: not Gaussian noise), and leverage against studentised residuals (points far right and far from 0
    move the fit; the three largest Cook's distances are labelled with their row). At most `max_points` rows are
    drawn (evenly spaced ones), so a large table still makes a small picture.

    Example:
        >>> import numpy as np
        >>> from linear_nets.diagnostics import regression_diagnostics
        >>> X = np.random.default_rng(0).normal(size=(50, 2)); y = X @ [1.0, 2.0] + 0.5
        >>> fig = plot_regression_diagnostics(regression_diagnostics(X, y + 0.1 * X[:, 0] ** 2, [1.0, 2.0], 0.5))
        >>> [ax.get_title() for ax in fig.axes]
        ['residuals vs fitted', 'normal Q-Q of the residuals', 'leverage vs studentised residuals']
    """
    d = diagnostics
    n = len(d.residuals)
    shown = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))
    fig, axes = subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    panels = [
        ("residuals vs fitted", "fitted value", "residual", d.fitted, d.residuals),
        ("normal Q-Q of the residuals", "normal quantile", "residual / s", d.qq_theoretical, d.qq_sample),
        ("leverage vs studentised residuals", "leverage h", "studentised residual", d.leverage, d.studentized),
    ]
    for ax, (title, xlabel, ylabel, x, y) in zip(axes, panels, strict=True):
        ax.scatter(x[shown], y[shown], s=9, alpha=0.6, color="tab:blue", linewidths=0)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(True)
    axes[0].axhline(0, color="k", linewidth=1)
    low, high = float(d.qq_theoretical[0]), float(d.qq_theoretical[-1])
    axes[1].plot([low, high], [low, high], "k--", linewidth=1)
    axes[2].axhline(0, color="k", linewidth=1)
    for i in np.argsort(-np.nan_to_num(d.cooks_distance))[:3]:
        axes[2].annotate(str(int(i)), (d.leverage[i], d.studentized[i]), fontsize=7, color="tab:red")
    if len(shown) < n:
        fig.suptitle(f"{len(shown)} of {n} rows drawn (evenly spaced)", fontsize=8)
    return fig
