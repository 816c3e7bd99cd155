"""`linear-nets train softmax`: softmax regression on Fashion-MNIST (d2l 3.6, 3.7), three ways.

Trains softmax(XW + b) from scratch (autograd and the book's `sgd`), with the hand-derived gradient (manual) or
with torch.nn (concise), all through the one training loop, and prints a row per epoch: mean train loss, train
accuracy, test accuracy and seconds. The seed fixes the initial weights and the shuffling, so the same command
prints the same numbers.

Every run writes a run directory (`--out`, default `runs/softmax-<timestamp>`): config.json, metrics.csv/.jsonl,
a checkpoint after every epoch, and at the end model.safetensors, curves.png/.svg, predictions.png and
summary.json. `--resume RUN_DIR` continues from the newest checkpoint and ends exactly where an uninterrupted run
would; Ctrl-C saves the last completed epoch and says how to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

import torch
from tqdm import tqdm

from linear_nets.cli import softmax_options as options
from linear_nets.cli.common import add_device_argument, add_run_arguments, resolve_device
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.fashion_mnist import FACTS, get_fashion_mnist_labels, load_data_fashion_mnist, locate
from linear_nets.errors import ConfigError
from linear_nets.recorder import RunRecorder
from linear_nets.runs import Run, run_config
from linear_nets.timing import Timer
from linear_nets.training import EpochRecord, History, predict, train
from linear_nets.tuning import IMPLS, NUM_CLASSES

EVAL_BATCH_BYTES = 256 << 20  # the float test set as one batch: 31 MB at 28 x 28


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `softmax` to the `train` group."""
    parser = subparsers.add_parser(
        "softmax",
        help="softmax regression on Fashion-MNIST (d2l 3.6, 3.7)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--impl", choices=tuple(IMPLS), default="concise", help="implementation (default: concise)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: 10)")
    parser.add_argument("--batch-size", type=int, default=256, help="default: 256")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="fixes initialisation and shuffling (default: 0)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the four IDX files")
    parser.add_argument("--resize", type=int, default=None, metavar="N", help="resize images to N x N (N*N inputs)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    options.add_arguments(parser)
    add_device_argument(parser)
    add_run_arguments(parser, resumable=True)
    parser.set_defaults(func=run)


# Options that may differ when resuming: where the data is and how many threads do not change the numbers.
MACHINE_OPTIONS = ("data_dir", "threads", "device")


def check_args(args: argparse.Namespace) -> None:
    """Raise `ConfigError` naming the first flag that is out of range (before any data is read)."""
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} must be a positive integer, got {value}")
    if args.resize is not None and args.resize <= 0:
        raise ConfigError(f"--resize must be a positive integer (the side of the resized images), got {args.resize}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise ConfigError(f"--lr must be a positive finite number, got {args.lr}")


def build_model(args: argparse.Namespace, num_inputs: int):
    """The model `args` describe, initialised from `args.seed` (training) or to be loaded (evaluate, predict)."""
    generator = torch.Generator().manual_seed(args.seed)
    model = IMPLS[args.impl](num_inputs, NUM_CLASSES, lr=args.lr, generator=generator, **options.model_options(args))
    return options.wrap_model(model, args, num_inputs)


@dataclass
class SoftmaxRun:
    """What `train_softmax` returns: the per-epoch history and where the time went."""

    history: History
    train_seconds: float
    load_seconds: float
    run_dir: Run

    @property
    def test_accuracy(self) -> float:
        """Test accuracy after the last epoch."""
        return self.history.epochs[-1].test_metric


def train_softmax(args: argparse.Namespace, out: TextIO | None = None) -> SoftmaxRun:
    """Load Fashion-MNIST, train the chosen implementation, print the per-epoch table to `out`, record the run.

    `args` are the parsed flags of `linear-nets train softmax` (see `register`). The progress bar goes to stderr
    and shows only when stderr is a terminal. `out` defaults to the current `sys.stdout`. The run directory is
    created only once the data has loaded, so a bad argument or missing data leaves nothing behind.
    """
    resumed = Run.open(args.resume, model="softmax") if args.resume else None
    if resumed is not None:
        args = _resumed_args(resumed, args)
    args = options.apply_preset(args)
    check_args(args)
    options.check_options(args)
    out = sys.stdout if out is None else out
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_timer = Timer()
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, args.resize, args.data_dir, seed=args.seed)
    train_iter, val_iter = options.split_validation(train_iter, args)  # (train_iter, None) without --val-fraction
    load_seconds = load_timer.stop()
    num_inputs = math.prod(train_iter.tensors[0].shape[1:]) if args.resize is None else args.resize**2
    model = build_model(args, num_inputs)
    options.fit_standardizer(model, train_iter)
    device = resolve_device(args.device)
    if device.type != "cpu":
        train_iter.to(device), test_iter.to(device), model.to(device)
        if val_iter is not None:
            val_iter.to(device)
    print(
        f"softmax regression ({args.impl}) on Fashion-MNIST: {train_iter.num_examples} train / "
        f"{test_iter.num_examples} test images, {num_inputs} inputs, batch {args.batch_size}, lr {args.lr}, "
        f"seed {args.seed}, {f'{torch.get_num_threads()} threads' if device.type == 'cpu' else device}; "
        f"data loaded in {load_seconds:.2f} s",
        file=out,
    )
    run_dir = resumed or Run.create("softmax", _config(args), args.out)
    hooks = options.EpochHooks(args, model, has_val=val_iter is not None)
    recorder = RunRecorder(run_dir, model, [train_iter.generator], args.checkpoint_every, extra=hooks)
    start = recorder.restore() if resumed is not None else 1
    if start > 1:
        print(f"resuming {run_dir.path} after epoch {start - 1}", file=out)
    with tqdm(
        total=(args.epochs - start + 1) * len(train_iter), unit="batch", leave=False, disable=not sys.stderr.isatty()
    ) as bar:
        table = _Table(out, bar)
        if val_iter is not None:
            table.HEADER = table.HEADER.replace("test acc", " val acc")  # the test set is scored once, at the end
        timer = Timer()
        # a new run that fails (e.g. diverges) is removed; a resumed one keeps its earlier checkpoints
        cleanup = run_dir.removed_on_error() if resumed is None else contextlib.nullcontext()
        try:
            with cleanup:
                train(
                    model.net,
                    _with_progress(train_iter, bar),
                    as_one_batch(val_iter if val_iter is not None else test_iter),
                    model.loss,
                    args.epochs,
                    model.updater,
                    on_epoch_end=lambda record: _epoch_end(record, table, hooks, recorder),
                    start_epoch=start,
                )
        except KeyboardInterrupt:
            recorder.save_checkpoint()
            raise Interrupted(run_dir, recorder.epochs_done) from None
        train_seconds = timer.stop()
    best = hooks.finish(as_one_batch(test_iter))  # restores the best epoch under --val-fraction
    history = recorder.history
    _write_figures(run_dir, history, model, test_iter)
    summary = recorder.finish(
        {"train_seconds": round(train_seconds, 3), "load_seconds": round(load_seconds, 3), **best},
        {"model": "softmax", "impl": args.impl, "num_inputs": num_inputs, "classes": NUM_CLASSES},
    )
    _print_summary(out, summary, run_dir)
    return SoftmaxRun(history, train_seconds, load_seconds, run_dir)


class Interrupted(Exception):
    """Ctrl-C during training, after the last completed epoch was saved."""

    def __init__(self, run_dir: Run, epochs_done: int) -> None:
        self.run_dir, self.epochs_done = run_dir, epochs_done
        super().__init__(
            f"interrupted after epoch {epochs_done}; saved to {run_dir.path}. "
            f"Resume with: linear-nets train softmax --resume {run_dir.path}"
        )


def _config(args: argparse.Namespace) -> dict:
    """What config.json records: every argument, the versions, and the data's identity."""
    arguments = {k: v for k, v in vars(args).items() if k not in ("func", "resume", "command", "model")}
    data = {"dir": str(locate(args.data_dir)), "sha256": {f.name: f.sha256 for s in FACTS.values() for f in s.files}}
    return run_config(arguments, data)


def _resumed_args(resumed: Run, given: argparse.Namespace) -> argparse.Namespace:
    """The run's own arguments, with only the machine-specific ones taken from the command line."""
    args = argparse.Namespace(**{**vars(given), **resumed.config["args"]})
    for name in MACHINE_OPTIONS:
        if getattr(given, name) is not None:
            setattr(args, name, getattr(given, name))
    args.resume = str(resumed.path)
    return args


def _write_figures(run_dir: Run, history: History, model, test_iter: ArrayLoader) -> None:
    """curves.png/.svg from the history and predictions.png of the first 18 test images."""
    from linear_nets.plotting import plot_history, pyplot, save_figure, show_predictions  # pyplot once needed

    curves = plot_history(history, ylim=(0.3, 0.9))
    save_figure(curves, run_dir.path / "curves")
    images, labels, predicted = (t.cpu() for t in predict(model.net, test_iter, n=18))
    grid = show_predictions(images, get_fashion_mnist_labels(labels), get_fashion_mnist_labels(predicted), num_rows=2)
    save_figure(grid, run_dir.path / "predictions.png")
    pyplot().close(curves), pyplot().close(grid)  # a long-lived process (tests, notebooks) keeps no open figures


def _print_summary(out: TextIO, summary: dict, run_dir: Run) -> None:
    final = summary["final"]
    rows = [
        ("epochs", f"{summary['epochs']}"),
        ("train loss", f"{final['train_loss']:.4f}"),
        ("train accuracy", f"{final['train_metric']:.4f}"),
        ("test accuracy", f"{summary.get('test_accuracy', final['test_metric']):.4f}"),
        ("training time", f"{summary['train_seconds']:.2f} s"),
        ("run directory", str(run_dir.path)),
    ]
    if "best_epoch" in summary:  # --val-fraction: the model is the best epoch's, the test set scored once
        rows[3:3] = [("best epoch", str(summary["best_epoch"])), ("val accuracy", f"{summary['val_accuracy']:.4f}")]
    print("", *(f"{name:<15} {value}" for name, value in rows), sep="\n", file=out)


def as_one_batch(loader: ArrayLoader, max_bytes: int = EVAL_BATCH_BYTES) -> Iterable:
    """The whole (unshuffled) loader as a list holding one batch, converted to float (and resized) once.

    The test set is evaluated after every epoch; as one batch that is one product over all 10,000 images instead
    of 40 conversions and products. Falls back to the loader itself when one float batch would exceed
    `max_bytes` (e.g. a large --resize).
    """
    images = loader.tensors[0]
    side = loader.resize
    per_example = math.prod(images.shape[1:-2]) * side * side if side is not None else math.prod(images.shape[1:])
    if loader.shuffle or loader.num_examples * per_example * 4 > max_bytes:
        return loader
    return [next(iter(ArrayLoader(loader.tensors, loader.num_examples, resize=side)))]


def _epoch_end(record: EpochRecord, table: _Table, hooks: options.EpochHooks, recorder: RunRecorder) -> bool:
    """Print the row, step the schedule and early stopping, then record: the checkpoint holds all of it."""
    table.row(record)
    stop = hooks(record)
    recorder.on_epoch_end(record)
    return stop


def run(args: argparse.Namespace) -> int:
    """The `train softmax` handler: 0 when done, 130 after Ctrl-C (with the last epoch saved)."""
    try:
        train_softmax(args)
    except Interrupted as exc:
        print(f"linear-nets: {exc}", file=sys.stderr)
        return 130
    return 0


class _Table:
    """Prints the per-epoch table, above the progress bar when there is one."""

    HEADER = f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'test acc':>8}  {'seconds':>7}"

    def __init__(self, out: TextIO, bar: tqdm) -> None:
        self.out, self.bar, self.started = out, bar, False

    def _write(self, line: str) -> None:
        if self.bar.disable:
            print(line, file=self.out, flush=True)
        else:
            self.bar.write(line, file=self.out)

    def row(self, r: EpochRecord) -> None:
        if not self.started:
            self._write(self.HEADER)
            self.started = True
        self._write(
            f"{r.epoch:>5}  {r.train_loss:>10.4f}  {r.train_metric:>9.4f}  {r.test_metric:>8.4f}  {r.seconds:>7.2f}"
        )


def _with_progress(loader: ArrayLoader, bar: tqdm) -> ArrayLoader | _Progress:
    """The loader itself when the bar is off (no cost per batch), else a view of it that advances the bar."""
    return loader if bar.disable else _Progress(loader, bar)


class _Progress:
    """Re-iterable view of a loader that advances `bar` after each batch."""

    def __init__(self, loader: ArrayLoader, bar: tqdm) -> None:
        self.loader, self.bar = loader, bar

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            yield batch
            self.bar.update()
