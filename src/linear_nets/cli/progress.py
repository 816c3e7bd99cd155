"""What a training command shows while it runs: a row per epoch, under a progress bar when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from linear_nets.training import Callback, EpochRecord


class EpochTable(Callback):
    """Prints `epoch, train loss, train acc, test (or val) acc, seconds` after each epoch, under a tqdm bar over the
    batches when stderr is a terminal (else no per-batch call at all). `scored` ("test" or "val") is the accuracy
    the last column shows; `run` names the run directory in the line that says a run resumes."""

    def __init__(self, out: TextIO, scored: str = "test", run: str = "") -> None:
        self.out, self.scored, self.run = out, scored, run
        self.bar: Any = None
        self.started = False
        if sys.stderr.isatty():
            self.on_batch_end = lambda: self.bar.update()

    def on_fit_begin(self, fit: Any) -> None:
        if self.on_batch_end is not None:
            from tqdm import tqdm

            epochs = fit.config.epochs - fit.start_epoch + 1
            self.bar = tqdm(total=max(0, epochs) * fit.num_batches, unit="batch", leave=False)
        if fit.start_epoch > 1:
            self._write(f"resuming {self.run} after epoch {fit.start_epoch - 1}")

    def _write(self, line: str) -> None:
        if self.bar is None:
            print(line, file=self.out, flush=True)
        else:
            self.bar.write(line, file=self.out)

    def on_epoch_end(self, record: EpochRecord) -> None:
        if not self.started:
            scored = self.scored + " acc"
            self._write(f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {scored:>8}  {'seconds':>7}")
            self.started = True
        accuracy = record.val_accuracy if self.scored == "val" else record.test_accuracy
        scored = "-" if accuracy is None else f"{accuracy:.4f}"  # a streamed fit scores its test rows once, at the end
        self._write(
            f"{record.epoch:>5}  {record.train_loss:>10.4f}  {record.train_accuracy:>9.4f}  {scored:>8}  "
            f"{record.seconds:>7.2f}"
        )

    def on_fit_end(self, fit: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove the bar (also after Ctrl-C)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
