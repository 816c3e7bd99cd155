"""A run's figures drawn by a second process that starts with the command, before torch is imported.

matplotlib's import and its first figure (fonts, caches) cost about as much as training Fashion-MNIST for a few
epochs. Started first, the drawing process pays them on the machine's other core while this one imports torch and
trains; at the end it is sent what to draw (plain numbers and arrays, no tensors) and writes the files while this
process writes the model and summary. A process that has matplotlib loaded already (a notebook, the test suite)
draws itself: a second process would only pay the import again.

    figures = Figures.start()          # first thing in the command
    ...
    figures.draw([("plot_history", (rows,), {"ylim": (0.3, 0.9)}, path / "curves")])   # -> the paths written
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

Job = tuple[str, tuple, dict, Path]
"""(a function of `linear_nets.plotting` returning a Figure, its args, its kwargs, where `save_figure` writes it)."""


class Figures:
    """Draws `Job`s, in the process `start` launched or, without one, in this process."""

    def __init__(self, process: subprocess.Popen | None = None) -> None:
        self.process = process

    @classmethod
    def start(cls) -> Figures:
        """The drawing process, launched now; none where matplotlib is already imported here, or in a torchrun
        process other than rank 0 (it draws nothing)."""
        if "matplotlib" in sys.modules or os.environ.get("RANK", "0") != "0":
            return cls()
        command = [sys.executable, "-c", "from linear_nets.cli.figure_process import serve; serve()"]
        return cls(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))

    def draw(self, jobs: list[Job]) -> list[Path]:
        """Draw and save every job; return the files written. A failure raises what `save_figure` raised (a
        `WriteError` for a full disk), whichever process drew."""
        if self.process is None:
            return _draw(jobs)
        stdout, _ = self.process.communicate(pickle.dumps(jobs))
        self.process = None
        if not stdout:  # it died (killed, out of memory): draw here, as without it
            return _draw(jobs)
        outcome = pickle.loads(stdout)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        """Stop a drawing process that will not be needed (the command failed or was interrupted)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _draw(jobs: list[Job]) -> list[Path]:
    from linear_nets import plotting

    written: list[Path] = []
    for name, args, kwargs, path in jobs:
        figure = getattr(plotting, name)(*args, **kwargs)
        figure = getattr(figure, "figure", figure)  # `plot` returns its axes
        written += plotting.save_figure(figure, path)
        plotting.pyplot().close(figure)
    return written


def serve() -> None:
    """The drawing process: import matplotlib and draw one throw-away figure (the first pays for fonts), then read the
    jobs from stdin, draw them and answer with the paths written or the exception raised (pickled, on stdout). Ends
    quietly when stdin closes without jobs (the command ended first)."""
    import io
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the command stops us

    from linear_nets import plotting

    plotting.plot([0, 1], [0, 1]).figure.savefig(io.BytesIO(), format="png")
    plotting.pyplot().close("all")
    request = sys.stdin.buffer.read()
    if not request:
        return
    try:
        outcome: Any = _draw(pickle.loads(request))
    except Exception as exc:  # raised again, as it was, by the command's process
        outcome = exc
    sys.stdout.buffer.write(pickle.dumps(outcome))
