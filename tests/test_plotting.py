"""Plotting: figures have the expected axes and series, files are written atomically, nothing blocks."""

from __future__ import annotations

import doctest
import importlib
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from linear_nets import plotting
from linear_nets.errors import ConfigError


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


# --- plot ---------------------------------------------------------------------------------------------------------


def test_plot_draws_each_series_against_the_shared_x_with_labels_and_legend():
    x = np.arange(0, 3, 0.5)
    ax = plotting.plot(x, [x**2, 2 * x - 3], "x", "f(x)", legend=["f(x)", "tangent"], xlim=[0, 3], yscale="linear")
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_xdata(), x)
    np.testing.assert_allclose(lines[1].get_ydata(), 2 * x - 3)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "f(x)")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["f(x)", "tangent"]
    assert ax.get_xlim() == (0.0, 3.0)
    assert lines[1].get_linestyle() == "--" and lines[1].get_color() == "m"


def test_plot_accepts_tensors_a_y_only_call_and_more_series_than_formats():
    ys = torch.arange(30.0).reshape(6, 5)
    ax = plotting.plot(list(ys), yscale="log")
    assert len(ax.get_lines()) == 6
    np.testing.assert_allclose(ax.get_lines()[5].get_xdata(), np.arange(5))
    np.testing.assert_allclose(ax.get_lines()[5].get_ydata(), ys[5].numpy())
    assert ax.get_yscale() == "log"
    assert ax.get_lines()[4].get_linestyle() == ax.get_lines()[0].get_linestyle()  # formats repeat


def test_set_figsize_sets_the_default_size_of_later_figures():
    import matplotlib

    with matplotlib.rc_context():
        plotting.set_figsize((2.0, 1.0))
        assert tuple(plotting.plot([1, 2], [3, 4]).figure.get_size_inches()) == (3.5, 2.5)  # plot's own default
        assert tuple(plotting.pyplot().figure().get_size_inches()) == (2.0, 1.0)


def test_plot_draws_on_given_axes_and_rejects_mismatched_series():
    ax = plotting.plot([1, 2, 3], [4, 5, 6])
    plotting.plot([1, 2], [0, 0], axes=ax)
    assert len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="2 x series for 3 y series"):
        plotting.plot([[1], [2]], [[1], [2], [3]])


# --- saving -------------------------------------------------------------------------------------------------------


def _figure():
    return plotting.plot([1, 2, 3], [1, 4, 9]).figure


def test_save_figure_writes_png_and_svg_atomically(tmp_path):
    fig = _figure()
    assert plotting.save_figure(fig, tmp_path / "a.png") == [tmp_path / "a.png"]
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plotting.save_figure(fig, tmp_path / "b") == [tmp_path / "b.png", tmp_path / "b.svg"]
    assert "<svg" in (tmp_path / "b.svg").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "b.svg"]  # no temporary files left


def test_save_figure_gives_the_same_svg_bytes_for_the_same_figure(tmp_path):
    fig = _figure()
    plotting.save_figure(fig, tmp_path / "a.svg")
    plotting.save_figure(fig, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


@pytest.mark.parametrize(
    ("name", "message"),
    [("fig.jpg", r"use a \.png or \.svg file name"), ("missing/fig.png", "does not exist")],
)
def test_save_figure_rejects_bad_paths_and_writes_nothing(tmp_path, name, message):
    with pytest.raises(ConfigError, match=message):
        plotting.save_figure(_figure(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_rejects_an_unwritable_directory(tmp_path, monkeypatch):
    # Faked: the tests may run as root, for whom chmod does not forbid writing.
    monkeypatch.setattr(plotting.os, "access", lambda path, mode: False)
    with pytest.raises(ConfigError, match="is not writable"):
        plotting.save_figure(_figure(), tmp_path / "fig.svg")
    assert list(tmp_path.iterdir()) == []


# --- Animator -----------------------------------------------------------------------------------------------------


def _series(animator):
    return [(list(line.get_xdata()), list(line.get_ydata())) for line in animator.axes[0].get_lines()]


def test_animator_outside_jupyter_saves_after_every_add_and_never_shows(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show called with a non-interactive backend"))
    animator = plotting.Animator(xlabel="epoch", legend=["a", "b"], save_to=tmp_path / "curves", save_interval=0)
    assert not animator.live and not animator.window
    animator.add(1, (0.5, 0.7))
    first_svg = (tmp_path / "curves.svg").read_text()
    animator.add(2, (0.4, None))  # None skips that series for this x
    assert _series(animator) == [([1.0, 2.0], [0.5, 0.4]), ([1.0], [0.7])]
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "curves.svg").read_text() != first_svg  # rewritten with the second point
    assert [t.get_text() for t in animator.axes[0].get_legend().get_texts()] == ["a", "b"]
    assert animator.axes[0].get_xlabel() == "epoch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "curves.svg"]
    assert plt.get_fignums() == []  # a plain Figure: nothing left in pyplot's list to pop up later


def test_animator_throttles_writes_but_always_writes_the_last_epoch_and_on_close(tmp_path):
    def svg():
        return (tmp_path / "c.svg").read_text()

    with plotting.Animator(xlim=[1, 3], save_to=tmp_path / "c", save_interval=3600) as animator:
        animator.add(1, 0.5)  # the first point is always written
        first = svg()
        animator.add(2, 0.4)  # too soon: pending
        assert svg() == first
        animator.add(3, 0.3)  # the right end of xlim: the final figure, written at once
        final = svg()
        assert final != first
        animator.add(2.5, 0.35)  # not the end: pending until the with block closes
        assert svg() == final
    assert svg() != final
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "c.svg"]


def test_animator_rejects_a_bad_save_path_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"use a \.png or \.svg"):
        plotting.Animator(save_to=tmp_path / "curves.pdf")


def test_animator_add_takes_one_x_per_series():
    animator = plotting.Animator(live=False)
    animator.add([1, 2], [3, 4])
    animator.add([2, 5], [6, 7])
    assert _series(animator) == [([1.0, 2.0], [3.0, 6.0]), ([2.0, 5.0], [4.0, 7.0])]
    single = plotting.Animator(live=False)
    single.add(torch.tensor(1), torch.tensor(0.5))  # 0-d tensors are single points
    assert _series(single) == [([1.0], [0.5])]


def test_animator_on_a_log_axis_is_scaled_once_with_its_own_settings():
    # Its axes are set from its own settings at each point, never first from `plot`'s linear defaults: going
    # through those set a log axis from a linear autoscale (a "non-positive ylim" warning, no margins)
    import warnings

    animator = plotting.Animator(ylabel="loss", yscale="log", live=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in (1, 2, 3):
            animator.add(epoch, 10.0**-epoch)
    low, high = animator.axes[0].get_ylim()
    assert animator.axes[0].get_yscale() == "log" and low < 1e-3 and high > 1e-1  # autoscale's margins kept


def test_animator_is_a_train_callback():
    from linear_nets.data.batches import ArrayLoader
    from linear_nets.training import train

    torch.manual_seed(0)
    X = torch.randn(64, 2)
    y = (X[:, 0] > 0).long()
    it = ArrayLoader((X, y), batch_size=16, shuffle=True, seed=0)
    net = torch.nn.Linear(2, 2)

    def sgd(batch_size):  # the book's updater(batch_size)
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.5 * p.grad / batch_size
                p.grad.zero_()

    animator = plotting.epoch_animator(3, live=False)
    loss = torch.nn.CrossEntropyLoss(reduction="none")
    history = train(net, it, it, loss, 3, sgd, callbacks=[animator.add_epoch])
    assert _series(animator) == [
        ([1.0, 2.0, 3.0], history.column("train_loss")),
        ([1.0, 2.0, 3.0], history.column("train_accuracy")),
        ([1.0, 2.0, 3.0], history.column("test_accuracy")),
    ]
    assert animator.axes[0].get_xlim() == (1.0, 3.0)


class _FakeDisplay:
    """Stands in for IPython.display: records what a Jupyter kernel would be sent."""

    def __init__(self):
        self.calls = []

    def SVG(self, data):  # noqa: N802 (IPython's name)
        return ("svg", data)

    def display(self, obj):
        self.calls.append(("display", obj))

    def clear_output(self, wait=False):
        self.calls.append(("clear_output", wait))


def test_animator_in_jupyter_redraws_in_place_as_svg(monkeypatch):
    fake_display = _FakeDisplay()
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # a kernel-backed shell
    fake_ipython.version_info = (9, 0)  # read by matplotlib at the first canvas of a process
    fake_ipython.display = fake_display
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", fake_display)
    animator = plotting.Animator(legend=["loss"])
    assert animator.live
    animator.add(1, 0.9)
    animator.add(2, 0.5)
    kinds = [c[0] for c in fake_display.calls]
    # Clear (deferred: wait=True, no flicker) then draw, so nothing is left pending to wipe the final figure.
    assert kinds == ["clear_output", "display"] * 2
    assert all(c[1] is True for c in fake_display.calls if c[0] == "clear_output")
    assert fake_display.calls[3][1][0] == "svg" and "<svg" in fake_display.calls[3][1][1]


def test_animator_in_a_window_shows_once_without_blocking(monkeypatch):
    import matplotlib.pyplot as plt

    shows = []
    monkeypatch.setattr(plotting, "_interactive_backend", lambda: True)
    monkeypatch.setattr(plt, "show", lambda *a, **k: shows.append(k))
    animator = plotting.Animator(live=False)
    assert animator.window
    animator.add(1, 1.0)
    animator.add(2, 2.0)
    assert shows == [{"block": False}]


def test_importing_the_package_leaves_pyplot_alone_and_picks_agg_without_display():
    code = (
        "import sys, linear_nets, linear_nets.plotting, linear_nets.training\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "import matplotlib; from linear_nets import plotting; plotting.pyplot(); print(matplotlib.get_backend())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().lower() == "agg"


# --- predictions and history --------------------------------------------------------------------------------------


def test_show_predictions_titles_true_over_predicted_and_marks_wrong_ones_red():
    fig = plotting.show_predictions(
        torch.rand(4, 1, 28, 28), ["bag", "coat", "shirt", "dress"], ["bag", "shirt", "shirt", "coat"], num_rows=2
    )
    axes = fig.axes
    assert len(axes) == 4
    assert [ax.get_title() for ax in axes] == ["bag\nbag", "coat\nshirt", "shirt\nshirt", "dress\ncoat"]
    red = [ax.title.get_color() == plotting.WRONG_COLOR for ax in axes]
    assert red == [False, True, False, True]
    with pytest.raises(ValueError, match="2 true labels but 1 predicted"):
        plotting.show_predictions(torch.rand(2, 28, 28), ["a", "b"], ["a"])


def test_plot_history_draws_the_columns_that_have_values():
    from linear_nets.training import EpochRecord, History

    history = History([EpochRecord(e, 1.0 / e, None, test_accuracy=0.5 + e / 10, seconds=0.1) for e in (1, 2, 3)])
    ax = plotting.plot_history(history).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train loss", "test acc"]
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 0.5, 1 / 3])
    np.testing.assert_allclose(lines[1].get_xdata(), [1, 2, 3])
    assert ax.get_xlabel() == "epoch"


# --- the notes' figures -------------------------------------------------------------------------------------------


def test_losses_figure_has_a_panel_per_loss_with_value_likelihood_and_derivative():
    from linear_nets import figures

    fig = figures.losses_figure(delta=0.5)
    assert [ax.get_title() for ax in fig.axes] == ["squared", "absolute (L1)", "Huber (δ=0.5)"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3, 3]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(figures.LOSS_SERIES)
    # Independent float64 formulas, in terms of the residual r on the x axis.
    r = np.asarray(fig.axes[0].get_lines()[0].get_xdata())
    huber = np.where(np.abs(r) > 0.5, np.abs(r) - 0.25, r**2 / 1.0)
    expected = [
        (r**2 / 2, np.exp(-(r**2) / 2), r),
        (np.abs(r), np.exp(-np.abs(r)), np.sign(r)),
        (huber, np.exp(-huber), np.where(np.abs(r) > 0.5, np.sign(r), r / 0.5)),
    ]
    for ax, series in zip(fig.axes, expected, strict=True):
        for line, want in zip(ax.get_lines(), series, strict=True):
            np.testing.assert_allclose(line.get_ydata(), want, atol=1e-12)


def test_normal_figure_draws_one_density_per_mean_and_std():
    from linear_nets import figures

    fig = figures.normal_figure([(0, 1), (0, 2), (3, 1)])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mean 0, std 1", "mean 0, std 2", "mean 3, std 1"]
    for line, (mu, sigma) in zip(ax.get_lines(), [(0, 1), (0, 2), (3, 1)], strict=True):
        x, p = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        np.testing.assert_allclose(p, np.exp(-((x - mu) ** 2) / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2))
        assert x[np.argmax(p)] == pytest.approx(mu, abs=0.01)


def test_regression_figure_draws_the_data_the_fit_and_the_truth():
    from linear_nets import figures

    x = torch.linspace(0, 1, 50).reshape(-1, 1)
    y = 3 * x - 1 + 0.01 * torch.randn(50, 1, generator=torch.Generator().manual_seed(0))
    fig = figures.regression_figure(x, y, w=3.01, b=-0.99, true_w=3.0, true_b=-1.0)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[x.numpy(), y.numpy()], rtol=1e-6)
    fit, true = ax.get_lines()
    np.testing.assert_allclose(fit.get_ydata(), [-0.99, 3.01 - 0.99])
    np.testing.assert_allclose(true.get_ydata(), [-1.0, 2.0])
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.raises(ValueError, match="draws one feature"):
        figures.regression_figure(torch.zeros(5, 2), torch.zeros(5), 1.0, 0.0)


def test_vectorization_figure_draws_a_bar_per_timing_in_ms():
    from linear_nets import figures

    fig = figures.vectorization_figure({"for loop": 2e-3, "vectorised": 1e-5})
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([2.0, 0.01])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["for loop", "vectorised"]
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "vectorised: 200x faster"
    with pytest.raises(ValueError, match="positive time"):
        figures.vectorization_figure({"broken clock": 0.0})


# --- linear-nets plot ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figure", "out", "magic"),
    [
        ("losses", "losses.png", b"\x89PNG"),
        ("normal", "normal.svg", b"<?xml"),
        ("regression", "regression.png", b"\x89PNG"),
        ("vectorization", "vectorization.svg", b"<?xml"),
    ],
)
def test_cli_plot_writes_each_figure(tmp_path, capsys, figure, out, magic):
    from linear_nets.cli import main

    args = ["plot", figure, "--out", str(tmp_path / out)]
    if figure == "vectorization":
        args += ["--n", "500"]  # keep the Python loop short
    assert main(args) == 0
    data = (tmp_path / out).read_bytes()
    assert data.startswith(magic) and len(data) > 1000
    assert capsys.readouterr().out.strip() == str(tmp_path / out)
    assert [p.name for p in tmp_path.iterdir()] == [out]


def test_cli_plot_without_extension_writes_png_and_svg(tmp_path):
    from linear_nets.cli import main

    assert main(["plot", "normal", "--mu-sigma", "1,0.5", "--out", str(tmp_path / "bell")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bell.png", "bell.svg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["losses", "--out", "{tmp}/losses.jpg"], "use a .png or .svg file name"),
        (["losses", "--out", "{tmp}/no/such/dir/losses.png"], "does not exist"),
        (["normal", "--mu-sigma", "0,-1", "--out", "{tmp}/n.png"], "SIGMA > 0"),
    ],
)
def test_cli_plot_bad_arguments_print_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    from linear_nets.cli import main

    assert main(["plot", *[a.format(tmp=tmp_path) for a in args]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("linear-nets: error:")
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("name", ["linear_nets.plotting", "linear_nets.figures"])
def test_docstring_examples_run(name):
    assert doctest.testmod(importlib.import_module(name)).failed == 0
