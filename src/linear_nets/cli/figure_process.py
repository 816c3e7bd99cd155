"""A run's figures drawn by a second process that starts with the command, before torch is imported.

matplotlib's import and its first figure (fonts, caches) cost about as much as training Fashion-MNIST for a few
epochs. Started first, the drawing process pays them on the machine's other core while this one imports torch and
trains. What does not wait for the end is drawn while the model trains (`keep`: the 18 test images of
predictions.png, whose titles only the trained model can write); at the end it is sent what to draw (plain numbers
and arrays, no tensors) and writes the files. A process that has matplotlib loaded already (a notebook, the test
suite) draws itself: a second process would only pay the import again.

    figures = Figures.start()          # first thing in the command
    figures.keep("grid", "show_images", images, 2, 9)                      # once the data has loaded
    ...
    figures.draw([("plot_history", (rows,), {"ylim": (0.3, 0.9)}, path / "curves"),
                  ("title_predictions", (Kept("grid"), true, predicted), {}, path / "predictions.png")])
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

Job = tuple[str, tuple, dict, Path]
"""(a function of `linear_nets.plotting` returning a Figure or axes, its args, its kwargs, where `save_figure` writes
it); an argument `Kept(name)` stands for what `Figures.keep` drew under that name."""


class Kept(NamedTuple):
    """In a `Job`'s arguments: the figure (or axes) `Figures.keep` drew under `name`."""

    name: str


class Figures:
    """Draws `Job`s, in the process `start` launched or, without one, in this process."""

    def __init__(self, process: subprocess.Popen | None = None) -> None:
        self.process = process
        self.kept: dict[str, tuple[str, tuple, dict]] = {}  # what `keep` asked for, drawn again here if it died

    @classmethod
    def start(cls) -> Figures:
        """The drawing process, launched now; none where matplotlib is already imported here, or in a torchrun
        process other than rank 0 (it draws nothing)."""
        if "matplotlib" in sys.modules or os.environ.get("RANK", "0") != "0":
            return cls()
        command = [sys.executable, "-c", "from linear_nets.cli.figure_process import serve; serve()"]
        return cls(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))

    def keep(self, name: str, function: str, *args: Any, **kwargs: Any) -> None:
        """Have the drawing process call `plotting.<function>(*args, **kwargs)` now, while this one goes on, and keep
        the result for a later job's `Kept(name)`. Without a drawing process it is drawn at `draw`."""
        self.kept[name] = (function, args, kwargs)
        if self.process is not None and not _send(self.process, ("keep", name, self.kept[name])):
            self.process = None

    def draw(self, jobs: list[Job]) -> list[Path]:
        """Draw and save every job; return the files written. A failure raises what `save_figure` raised (a
        `WriteError` for a full disk), whichever process drew."""
        process, self.process = self.process, None
        answer = process.communicate()[0] if process is not None and _send(process, ("draw", jobs)) else b""
        if not answer:  # no drawing process, or it died (killed, out of memory): drawn here
            used = {a.name for _, args, _, _ in jobs for a in args if isinstance(a, Kept)}
            return _draw(jobs, {name: _call(*self.kept[name]) for name in used})
        outcome = pickle.loads(answer)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        """Stop a drawing process that will not be needed (the command failed or was interrupted)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _send(process: subprocess.Popen, message: tuple) -> bool:
    """Write one message to the drawing process; False when it has died (it is then reaped)."""
    try:
        pickle.dump(message, process.stdin)
        process.stdin.flush()
        return True
    except OSError:  # BrokenPipeError among them
        process.kill()
        process.wait()
        return False


def _call(function: str, args: tuple, kwargs: dict, kept: dict[str, Any] | None = None) -> Any:
    from linear_nets import plotting

    args = tuple(kept[a.name] if isinstance(a, Kept) and kept is not None else a for a in args)
    return getattr(plotting, function)(*args, **kwargs)


def _draw(jobs: list[Job], kept: dict[str, Any]) -> list[Path]:
    from linear_nets import plotting

    written: list[Path] = []
    for name, args, kwargs, path in jobs:
        figure = _call(name, args, kwargs, kept)
        figure = getattr(figure, "figure", figure)  # `plot` returns its axes
        written += plotting.save_figure(figure, path)
        plotting.pyplot().close(figure)
    return written


def _draw_beside(jobs: list[Job], kept: dict[str, Any]) -> list[Path]:
    """`_draw`, with the first job drawn by a forked child: the command's process waits idle meanwhile, so a second
    core is free (the default run's figures after the fit: 0.18 s instead of 0.27 s, benchmarks/RESULTS.md). Raises
    the first job's failure before the others', as `_draw` does."""
    if len(jobs) < 2 or not hasattr(os, "fork"):
        return _draw(jobs, kept)
    read, write = os.pipe()
    if (child := os.fork()) == 0:
        os.close(read)
        try:
            outcome: Any = _draw(jobs[:1], kept)
        except BaseException as exc:
            outcome = exc
        with os.fdopen(write, "wb") as answer:
            pickle.dump(outcome, answer)
        os._exit(0)
    os.close(write)
    try:
        rest: Any = _draw(jobs[1:], kept)
    except Exception as exc:
        rest = exc
    with os.fdopen(read, "rb") as answer:
        first = pickle.loads(answer.read() or pickle.dumps(ChildProcessError("the drawing child died")))
    os.waitpid(child, 0)
    for outcome in (first, rest):
        if isinstance(outcome, BaseException):
            raise outcome
    return first + rest


def serve() -> None:
    """The drawing process: import matplotlib and draw one throw-away figure (the first pays for fonts), then read
    messages from stdin: ("keep", name, (function, args, kwargs)), drawn at once and kept, until ("draw", jobs),
    answered with the paths written or the exception raised (pickled, on stdout). Ends quietly when stdin closes
    without jobs (the command ended first)."""
    import io
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the command stops us

    from linear_nets import plotting

    plotting.plot([0, 1], [0, 1]).figure.savefig(io.BytesIO(), format="png")
    plotting.pyplot().close("all")
    kept: dict[str, Any] = {}
    try:
        while (message := pickle.load(sys.stdin.buffer))[0] == "keep":
            kept[message[1]] = _call(*message[2])
        outcome: Any = _draw_beside(message[1], kept)
    except EOFError:
        return
    except Exception as exc:  # raised again, as it was, by the command's process
        outcome = exc
    sys.stdout.buffer.write(pickle.dumps(outcome))
