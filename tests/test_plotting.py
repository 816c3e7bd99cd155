"""Plotting: figures have the expected axes and series, files are written atomically, nothing blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linear_nets import plotting


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("shape", [(6, 28, 28), (6, 1, 28, 28)])
def test_show_images_draws_each_image_with_its_title(shape):
    imgs = torch.rand(shape)
    axes = plotting.show_images(imgs, 2, 3, titles=[f"t{i}" for i in range(6)], scale=1.0)
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes] == [f"t{i}" for i in range(6)]
    for ax, img in zip(axes, imgs, strict=True):
        shown = ax.get_images()[0].get_array()
        np.testing.assert_allclose(np.asarray(shown), img.reshape(28, 28).numpy())
        assert not ax.get_xaxis().get_visible()
    assert tuple(axes[0].figure.get_size_inches()) == (3.0, 2.0)


def test_show_images_accepts_a_list_and_leaves_extra_cells_empty():
    axes = plotting.show_images([np.zeros((4, 5)), np.ones((4, 5))], 1, 3)
    assert [len(ax.get_images()) for ax in axes] == [1, 1, 0]
    assert all(ax.get_title() == "" for ax in axes)


def test_show_images_rejects_an_empty_grid():
    with pytest.raises(ValueError, match="num_rows and num_cols must be positive"):
        plotting.show_images(torch.rand(1, 2, 2), 0, 3)
