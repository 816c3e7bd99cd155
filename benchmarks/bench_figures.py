"""The wait for a run's figures after the fit: what `train softmax`'s drawing process does once the model is trained.

The default run draws curves.png/.svg and predictions.png (18 test images titled with the predictions). Rows,
interleaved per round, each in one process that has matplotlib loaded and warmed up, as the drawing process has:
- all at the end, in turn (how the command drew before issue 25's last change);
- the images of predictions.png drawn beforehand (`Figures.keep`, while the model trains), titled at the end;
- the same, and the curves drawn by a forked child beside it (`figure_process._draw_beside`).
Only the time after the fit counts (what the command waits for); drawing the kept images is off the clock.

Usage: python benchmarks/bench_figures.py [--rounds 7] [--write]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_data import machine, replace_section

from linear_nets import plotting
from linear_nets.atomic import atomic_write_text
from linear_nets.cli.figure_process import Kept, _call, _draw, _draw_beside
from linear_nets.data.fashion_mnist import FashionMNIST

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Figures of a run: the wait after the fit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true", help=f"write the table into {RESULTS.name}")
    args = parser.parse_args()
    test = FashionMNIST("test")
    images = test.images[:18].float().div(255).numpy()
    true = [test.classes[i] for i in test.labels[:18]]
    predicted = true[1:] + true[:1]  # some right, most wrong: red titles drawn too
    rows = [{"epoch": e, "train_loss": 0.8 - e / 30, "train_accuracy": 0.7 + e / 60, "test_accuracy": 0.72 + e / 80}
            for e in range(1, 11)]  # fmt: skip
    plotting.plot([0, 1], [0, 1]).figure.savefig(io.BytesIO(), format="png")  # the drawing process's warm-up
    plotting.pyplot().close("all")
    times: dict[str, list[float]] = {"all at the end, in turn": [], "images kept, titled at the end": [],
                                     "images kept, curves beside in a forked child": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        curves = ("plot_history", (rows,), {"ylim": (0.3, 0.9)}, out / "curves")
        whole = ("show_predictions", (images, true, predicted), {"num_rows": 2}, out / "predictions.png")
        titled = ("title_predictions", (Kept("grid"), true, predicted), {}, out / "predictions.png")
        for _ in range(args.rounds):
            ways = ((_draw, [curves, whole]), (_draw, [curves, titled]), (_draw_beside, [curves, titled]))
            for name, (draw, jobs) in zip(times, ways, strict=True):
                kept = {"grid": _call("show_images", (images, 2, 9), {})}
                start = time.perf_counter()
                draw(jobs, kept)
                times[name].append(time.perf_counter() - start)
                plotting.pyplot().close("all")
    lines = [f"| drawing after the fit (median of {args.rounds}) | s | min s |", "|---|---:|---:|"]
    lines += [f"| {name} | {statistics.median(t):.3f} | {min(t):.3f} |" for name, t in times.items()]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = "\n".join(lines) + f"\n\nMachine: {machine()}. Measured {when} by `benchmarks/bench_figures.py`."
    print(body)
    if args.write:
        atomic_write_text(RESULTS, replace_section(RESULTS.read_text(), SECTION, body))


if __name__ == "__main__":
    main()
