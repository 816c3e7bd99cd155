"""Plots that work everywhere: live in Jupyter, saved to PNG/SVG from a terminal or an IDE (d2l 3.1-3.7).

matplotlib's pyplot is imported lazily, at the first plot, never when `linear_nets` is imported: importing pyplot
picks a GUI backend, which is slow and fails on machines without a display. `_pyplot()` decides the backend once:
whatever the user or Jupyter chose, else Agg when there is no display.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


def _has_display() -> bool:
    """True when a GUI window could open (macOS and Windows always can; X11/Wayland need their variable)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _pyplot() -> Any:
    """Import pyplot, choosing Agg first when nobody chose a backend and there is no display."""
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND") and not _has_display():
        import matplotlib

        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _to_numpy(x: Any) -> Any:
    """A numpy array from a tensor (detached, on the CPU) or anything array-like."""
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def show_images(
    imgs: Any, num_rows: int, num_cols: int, titles: Sequence[str] | None = None, scale: float = 1.5
) -> Any:
    """Draw `imgs` in a `num_rows` x `num_cols` grid, one title above each image (d2l 3.5).

    Args:
        imgs: a tensor or array `[N, H, W]` or `[N, 1, H, W]`, or a list of `[H, W]` images; the first
            `num_rows * num_cols` are drawn (fewer leave the last cells empty).
        num_rows, num_cols: grid shape.
        titles: one title per image (e.g. text labels), or None.
        scale: inches per grid cell.

    Returns the numpy array of axes (flattened, `num_rows * num_cols` long), as d2l does; the figure is
    `axes[0].figure`.

    Example:
        >>> import torch
        >>> axes = show_images(torch.rand(6, 28, 28), 2, 3, titles=list("abcdef"))
        >>> len(axes), axes[0].get_title()
        (6, 'a')
    """
    if num_rows <= 0 or num_cols <= 0:
        raise ValueError(f"num_rows and num_cols must be positive, got {num_rows} x {num_cols}")
    plt = _pyplot()
    figsize = (num_cols * scale, num_rows * scale)
    fig, axes = plt.subplots(num_rows, num_cols, figsize=figsize, squeeze=False)
    axes = axes.flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs, strict=False)):
        img = _to_numpy(img)
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
