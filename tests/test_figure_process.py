"""A run's figures drawn by a second process (`cli.figure_process`): the same files as drawn here, the same errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from linear_nets.cli.figure_process import Figures
from linear_nets.errors import LinearNetsError

ROWS = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 0.5 + e / 40, "test_accuracy": None} for e in (1, 2, 3)]


def drawing_process() -> Figures:
    """A drawing process as `Figures.start` launches it from a fresh command (here matplotlib is loaded already, so
    `start` would draw in this process)."""
    command = [sys.executable, "-c", "from linear_nets.cli.figure_process import serve; serve()"]
    return Figures(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))


def jobs(folder):
    images = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    return [("plot_history", (ROWS,), {"ylim": (0.0, 1.0)}, folder / "curves"),
            ("show_predictions", (images, list("abcd"), list("abce")), {"num_rows": 2}, folder / "predictions.png")]


def test_the_drawing_process_writes_the_files_this_process_would(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    written_here = Figures().draw(jobs(here))
    written_there = drawing_process().draw(jobs(there))
    assert [p.name for p in written_here] == [p.name for p in written_there] == [
        "curves.png", "curves.svg", "predictions.png"]
    for a, b in zip(written_here, written_there, strict=True):  # same matplotlib, same settings: the same bytes
        assert a.read_bytes() == b.read_bytes(), a.name


def test_a_failure_in_the_drawing_process_is_raised_here_as_it_was_there(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(LinearNetsError) as here:
        Figures().draw(jobs(missing))
    with pytest.raises(type(here.value)) as there:
        drawing_process().draw(jobs(missing))
    assert str(there.value) == str(here.value) and "does not exist" in str(there.value)
    assert not missing.exists()


def test_a_drawing_process_that_died_leaves_the_drawing_to_this_one(tmp_path):
    figures = drawing_process()
    figures.process.kill()
    assert [p.name for p in figures.draw(jobs(tmp_path))] == ["curves.png", "curves.svg", "predictions.png"]


def test_a_drawing_process_not_needed_is_stopped():
    figures = drawing_process()
    process = figures.process
    figures.close()
    assert process.returncode is not None and figures.process is None
    figures.close()  # twice is harmless


def test_no_second_process_where_matplotlib_is_loaded_or_for_ranks_other_than_0(monkeypatch):
    import matplotlib  # noqa: F401  (loaded: drawing here costs nothing more)

    assert Figures.start().process is None
    monkeypatch.setitem(os.environ, "RANK", "1")
    monkeypatch.delitem(sys.modules, "matplotlib")
    assert Figures.start().process is None


def kept_jobs(figures, folder):
    """predictions.png drawn in two steps as `train softmax` draws it: the images first (`keep`), titled at the end."""
    from linear_nets.cli.figure_process import Kept

    images = np.random.default_rng(1).random((4, 28, 28), dtype=np.float32)
    figures.keep("grid", "show_images", images, 2, 2)
    return [("title_predictions", (Kept("grid"), list("abcd"), list("abce")), {"probabilities": [0.5] * 4},
             folder / "predictions.png")]  # fmt: skip


def test_what_keep_drew_early_is_titled_at_the_end_as_show_predictions_would_draw_it(tmp_path):
    from linear_nets import plotting

    here, there = Figures(), drawing_process()
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    [a] = here.draw(kept_jobs(here, tmp_path / "a"))
    [b] = there.draw(kept_jobs(there, tmp_path / "b"))
    assert a.read_bytes() == b.read_bytes()
    images = np.random.default_rng(1).random((4, 28, 28), dtype=np.float32)
    whole = plotting.show_predictions(images, list("abcd"), list("abce"), num_rows=2, probabilities=[0.5] * 4)
    plotting.save_figure(whole, tmp_path / "whole.png")
    assert (tmp_path / "whole.png").read_bytes() == a.read_bytes()  # one figure, whichever way it was drawn


def test_a_drawing_process_that_died_after_keep_leaves_the_whole_drawing_to_this_one(tmp_path):
    figures = drawing_process()
    jobs_ = kept_jobs(figures, tmp_path)
    figures.process.kill()
    figures.process.wait()
    assert [p.name for p in figures.draw(jobs_)] == ["predictions.png"]
    assert figures.process is None


def test_a_kept_drawing_that_fails_is_raised_by_draw_here_as_there(tmp_path):
    """A `keep` that fails in the drawing process fails the `draw` that needs it, with the error it raised there."""
    from linear_nets.cli.figure_process import Kept

    for figures in (Figures(), drawing_process()):
        figures.keep("grid", "show_images", np.zeros((2, 4, 4), dtype=np.float32), 0, 2)  # no rows: a ValueError
        with pytest.raises(ValueError, match="num_rows and num_cols must be positive"):
            figures.draw([("title_predictions", (Kept("grid"), ["a"], ["a"]), {}, tmp_path / "p.png")])
        assert not (tmp_path / "p.png").exists()
