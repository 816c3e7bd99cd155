"""`linear-nets train softmax`: softmax regression on Fashion-MNIST (d2l 3.6, 3.7), three ways.

Trains softmax(XW + b) from scratch (autograd and the book's `sgd`), with the hand-derived gradient (manual) or
with torch.nn (concise), and prints a row per epoch: mean train loss, train accuracy, test (or validation)
accuracy and seconds. The seed fixes the initial weights, the shuffling and the validation split, so the same
command prints the same numbers.

This module parses flags and prints; the fit is `pipeline.fit.fit_softmax`, the run directory `pipeline.recorder`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TextIO

from linear_nets.cli.common import (
    add_train_arguments,
    check_tensorboard,
    read_table,
    resumed_config,
    standardize_tables,
    table_options,
)
from linear_nets.pipeline.config import SOFTMAX_PRESETS, SoftmaxConfig, add_arguments, from_args, validate


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `softmax` to the `train` group."""
    parser = subparsers.add_parser(
        "softmax", help="softmax regression on Fashion-MNIST (d2l 3.6, 3.7)", description=__doc__.split("\n\n")[1]
    )
    add_arguments(parser, SoftmaxConfig)
    parser.add_argument("--preset", default=None, choices=tuple(SOFTMAX_PRESETS),
                        help="start from a named configuration (book: d2l 3.7; best: the tuned one); "
                             "flags given beside it still apply")  # fmt: skip
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the four IDX files")
    add_train_arguments(parser, run, resumable=True, tensorboard_help="also write TensorBoard event files into the run "
                        "directory (scalars per epoch, the weight pictures, the config)")  # fmt: skip


@dataclasses.dataclass
class SoftmaxRun:
    """What `train_softmax` returns: the fit, its run directory, and the seconds spent reading the data."""

    fit: Any
    run_dir: Any
    load_seconds: float


class Interrupted(Exception):
    """Ctrl-C during training, after the last completed epoch was saved (or the run removed: none was)."""


def _stop(recorder: Any, table: Any) -> str:
    """After Ctrl-C or a closed output during the fit (`RunRecorder.stop`): what happened, in words for the user."""
    table.close()
    path = recorder.run.path
    if recorder.stop():
        return (f"after epoch {recorder.epochs_done}; saved to {path}. "
                f"Resume with: linear-nets train softmax --resume {path}")  # fmt: skip
    return f"in epoch {recorder.epochs_done + 1}, before any epoch was saved; removed {path}"


def train_softmax(args: argparse.Namespace, out: TextIO | None = None) -> Any:
    """Load the data, fit the configuration the flags describe, print the per-epoch table, record the run; return a
    `SoftmaxRun` (None when `--resume` names a finished run). Under torchrun every process runs this."""
    from linear_nets.cli.common import data_parallel
    from linear_nets.cli.figure_process import Figures

    figures = Figures.start()  # first: it imports matplotlib on the other core while this process imports torch
    with data_parallel() as world:
        try:
            return _train_softmax(args, sys.stdout if out is None else out, world, figures)
        finally:
            figures.close()  # inside the group's handling of torchrun's SIGTERM (`distributed.started`)


def _train_softmax(args: argparse.Namespace, out: TextIO, world: Any, figures: Any) -> Any:
    from linear_nets.cli.progress import EpochTable
    from linear_nets.data.fashion_mnist import FACTS, locate
    from linear_nets.pipeline.distributed import fingerprint
    from linear_nets.pipeline.fit import Dataset, fashion_mnist, fit_softmax, prepare_machine
    from linear_nets.pipeline.recorder import open_run, run_options, start_run
    from linear_nets.timing import Timer

    resumed, summary, out_dir = open_run("softmax", world, args.resume, args.out)
    preset = SOFTMAX_PRESETS[args.preset] if args.preset else None
    given: dict[str, Any] = {"data_dir": args.data_dir}
    if resumed is None:  # the preset (or the defaults) with the given flags on top
        config = from_args(SoftmaxConfig, standardize_tables(args), preset)
        table = table_options(args)
        given |= {"checkpoint_every": 1 if args.checkpoint_every is None else args.checkpoint_every,
                  "table": table and table.to_dict(), "tensorboard": args.tensorboard}
    else:  # the run's own config, of which only the machine fields may differ
        config = resumed_config(args, resumed, preset)
    if summary is not None:  # finished: nothing to do, and nothing in it may change
        epochs = summary.get("epochs")
        print(f"{resumed.path} already finished ({epochs} epoch{'s' * (epochs != 1)}): nothing to resume", file=out)
        return None
    config, options = run_options(config, given, world, resumed)
    prepare_machine(config, world=world)  # threads set, device checked before anything is read or written
    if args.tensorboard:
        check_tensorboard()
    load_timer = Timer()
    if options.get("table"):
        from linear_nets.pipeline.tables import TableOptions

        data = read_table(TableOptions(**options["table"]), "classification", config)
        record = data.record()
        if not hasattr(data, "batches"):  # in memory: class names from the training schema
            data = Dataset(data.train, data.test, list(data.spec.classes))
    else:
        data, record = fashion_mnist(options.get("data_dir")), None
    load_seconds = load_timer.stop()
    source, what = ("Fashion-MNIST", "images") if record is None else (options["table"]["data"], "rows")
    if hasattr(data, "batches"):  # streamed: the rows are counted as they pass
        tested = (f"{data.options.test_data} to test on" if data.options.test_data else
                  f"{data.options.test_fraction:g} held out for testing")  # fmt: skip
        rows = f"{data.info.num_rows} {what} streamed, {tested}"
    else:  # in memory: the largest batch `--resize` makes is known now, before any is made
        validate(config, examples=len(data.train[1]))
        rows = f"{len(data.train[1])} train / {0 if data.test is None else len(data.test[1])} test {what}"
    inputs = config.resize**2 if config.resize else data.num_inputs
    if config.val_fraction:
        rows += f" ({config.val_fraction:g} of each class held out for validation)"
    print(
        f"softmax regression ({config.impl}) on {source}: {rows}, {inputs} inputs, batch {config.batch_size}, "
        f"lr {config.lr}, seed {config.seed}{_threads(config, world)}; data loaded in {load_seconds:.2f} s",
        file=out,
    )
    identity = record or {"dir": str(locate(options.get("data_dir"))),
                          "sha256": {f.name: f.sha256 for s in FACTS.values() for f in s.files}}  # fmt: skip
    recorder = start_run("softmax", config, identity, options, out_dir, world, resumed, fingerprint(data, world))
    run_dir = recorder.run
    samples = _first_test_images(data, config, figures) if record is None and world.leader else None
    table = EpochTable(out, scored="val" if config.val_fraction is not None else "test", run=str(run_dir.path))
    callbacks = [recorder, table]
    if world.leader and (options.get("tensorboard") or args.tensorboard):
        from linear_nets.pipeline.tensorboard import TensorBoardLog

        side = (config.resize or 28) if record is None else None  # images: the side of their weight pictures
        callbacks.append(TensorBoardLog(run_dir.path / "tensorboard", list(data.classes or []), side))
    cleanup = recorder.removed_on_error  # a new run that fails is removed; a resumed one keeps its checkpoints
    try:
        with cleanup():
            result = fit_softmax(config, data, callbacks, world=world)  # the recorder restores first
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted {_stop(recorder, table)}") from None
    except BrokenPipeError:  # our reader left (`| head`): stop as after Ctrl-C; main then quiets stdout
        print(f"linear-nets: output closed {_stop(recorder, table)}", file=sys.stderr)
        raise
    if not world.leader:
        return SoftmaxRun(result, run_dir, load_seconds)
    summary = {
        "classes": result.classes,
        "test_accuracy": None if result.test_accuracy is None else round(result.test_accuracy, 6),
        "train_seconds": round(result.seconds, 3),
        "load_seconds": round(load_seconds, 3),
    }
    if result.val_accuracy is not None:
        summary |= {"val_accuracy": round(result.val_accuracy, 6), "best_epoch": result.best_epoch}
    meta = {"model": "softmax", "impl": config.impl, "num_inputs": inputs, "classes": result.classes}
    with cleanup():
        figures.draw(_figure_jobs(run_dir.path, result, samples))
        summary = recorder.finish(result.model.state_tensors(), summary, meta)
    _print_summary(out, summary, run_dir.path)
    return SoftmaxRun(result, run_dir, load_seconds)


def _threads(config: SoftmaxConfig, world: Any) -> str:
    import torch

    threads = torch.get_num_threads()
    where = f", {threads} thread{'s' * (threads > 1)}" if config.device == "cpu" else f", device {config.device}"
    return where + (f" x {world.size} processes (data-parallel)" if world.launched else "")


def _first_test_images(data: Any, config: SoftmaxConfig, figures: Any) -> tuple[Any, list[int]] | None:
    """The first 18 test images as the fit sees them, and their classes (None without a test set); their grid for
    predictions.png is drawn now, while the model trains (`Figures.keep`)."""
    from linear_nets.pipeline.fit import as_one_batch

    if data.test is None:
        return None
    [(X, labels)] = as_one_batch(data.test[0][:18], data.test[1][:18], config.resize)
    figures.keep("test images", "show_images", X.numpy(), 2, -(-len(labels) // 2))
    return X, labels.tolist()


def _figure_jobs(path: Any, result: Any, samples: tuple[Any, list[int]] | None) -> list[Any]:
    """What to draw (`cli.figure_process.Job`s): curves.png/.svg from the history and, for images, predictions.png
    of the `samples` (each titled with the probability of the predicted class)."""
    from linear_nets.cli.figure_process import Kept

    rows = result.history.as_dicts()
    jobs = [("plot_history", (rows,), {"ylim": _whole(rows, (0.3, 0.9) if samples else (0.0, 1.0))}, path / "curves")]
    if samples is None:
        return jobs
    X, labels = samples
    probabilities = result.model.predict_proba(X.to(next(iter(result.model.parameters())).device)).cpu()
    confidence, predicted = probabilities.max(dim=1)
    names = result.classes
    titles = ([names[i] for i in labels], [names[i] for i in predicted])
    return [*jobs, ("title_predictions", (Kept("test images"), *titles), {"probabilities": confidence.tolist()},
                    path / "predictions.png")]  # fmt: skip


def _whole(rows: list[dict[str, Any]], usual: tuple[float, float]) -> tuple[float, float]:
    """The y range of the curves: `usual` (accuracies and a healthy loss), widened to show every value, so a loss
    that climbs is seen whole rather than cut off at the top of the frame."""
    values = [v for r in rows for k, v in r.items() if k not in ("epoch", "seconds") and v is not None]
    low, high = min([usual[0], *values]), max([usual[1], *values])
    return low, high + (0.05 * (high - low) if high > usual[1] else 0.0)


def _print_summary(out: TextIO, summary: dict, path: Any) -> None:
    final = summary["final"]
    rows = [
        ("epochs", f"{summary['epochs']}"),
        ("train loss", f"{final['train_loss']:.4f}"),
        ("train accuracy", f"{final['train_accuracy']:.4f}"),
        ("test accuracy", "no test rows" if summary["test_accuracy"] is None else f"{summary['test_accuracy']:.4f}"),
        ("training time", f"{summary['train_seconds']:.2f} s"),
        ("run directory", str(path)),
    ]
    if "best_epoch" in summary:  # a validation split: the model is the best epoch's, the test set scored once
        rows[3:3] = [("best epoch", str(summary["best_epoch"])), ("val accuracy", f"{summary['val_accuracy']:.4f}")]
    print("", *(f"{name:<15} {value}" for name, value in rows), sep="\n", file=out)


def run(args: argparse.Namespace) -> int:
    """The `train softmax` handler: 0 when done, 130 after Ctrl-C (with the last epoch saved, or the run removed
    when no epoch had ended)."""
    try:
        train_softmax(args)
    except Interrupted as exc:
        print(f"linear-nets: {exc}", file=sys.stderr)
        return 130
    return 0
