"""`train --tensorboard`: TensorBoard event files in `<run>/tensorboard/` (needs the optional `tensorboard` package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linear_nets.training import Callback, EpochRecord

SCALARS = (("train_loss", "loss/train"), ("train_accuracy", "accuracy/train"), ("val_accuracy", "accuracy/val"),
           ("test_accuracy", "accuracy/test"))  # fmt: skip
"""EpochRecord field -> TensorBoard tag."""


class TensorBoardLog(Callback):
    """Write a fit's `SCALARS`, class weights as pictures (images of side `image_side`) and config to `directory`."""

    name = "tensorboard"

    def __init__(self, directory: str | Path, classes: list[str], image_side: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(directory))
        self.classes, self.image_side = classes, image_side
        self.fit: Any = None

    def on_fit_begin(self, fit: Any) -> None:
        self.fit = fit

    def on_epoch_end(self, record: EpochRecord) -> None:
        for field, tag in SCALARS:
            value = getattr(record, field)
            if value is not None:
                self.writer.add_scalar(tag, value, record.epoch)
        if self.image_side is not None:  # red positive, blue negative, on one scale centred on 0
            import matplotlib

            from linear_nets.plotting import WEIGHT_CMAP, class_weight_images, weight_limit

            W = self.fit.model.state_tensors()["W"].detach().cpu().double()
            limit = weight_limit(W)
            pictures = class_weight_images(W, (self.image_side, self.image_side))
            colours = matplotlib.colormaps[WEIGHT_CMAP]((pictures + limit) / (2 * limit))[..., :3]
            for name, picture in zip(self.classes, colours, strict=True):
                self.writer.add_image(f"weights/{name}", picture, record.epoch, dataformats="HWC")
        self.writer.flush()

    def on_fit_end(self, fit: Any) -> None:
        last = fit.history.epochs[-1] if fit.history.epochs else None
        metrics = {f"hparam/{field}": getattr(last, field) for field, _ in SCALARS
                   if last is not None and getattr(last, field) is not None}  # fmt: skip
        _close(self.writer, fit.config, metrics)


def log_linreg(directory: str | Path, result: Any, summary: dict[str, Any]) -> None:
    """`train linreg --tensorboard`, once the fit is done: `loss/train` per epoch, `coefficients/<name>`,
    `std_errors/<name>` (least squares), and the config as hyperparameters with the summary's MSE and R²."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(directory))
    for record in result.history.epochs:
        writer.add_scalar("loss/train", record.train_loss, record.epoch)
    step = len(result.history.epochs)
    names = summary.get("coefficients")
    coefficients = dict(names) if isinstance(names, dict) else {f"w{j + 1}": v for j, v in enumerate(result.w.tolist())}
    coefficients["intercept"] = float(result.b)
    for name, value in coefficients.items():
        writer.add_scalar(f"coefficients/{name}", value, step)
    for name, value in (summary.get("standard_errors") or {}).items():
        if value is not None:
            writer.add_scalar(f"std_errors/{name}", value, step)
    metrics = {f"hparam/{key}": summary[key] for key in ("train_mse", "test_mse", "test_r2", "train_r2")
               if isinstance(summary.get(key), int | float)}  # fmt: skip
    _close(writer, result.config, metrics)


def _close(writer: Any, config: Any, metrics: dict[str, float]) -> None:
    """Write the config's plain values as hyperparameters with `metrics`, and close the event files."""
    from linear_nets.pipeline.config import to_dict

    hparams = {k: v for k, v in to_dict(config).items() if isinstance(v, int | float | str | bool)}
    writer.add_hparams(hparams, metrics, run_name=".")
    writer.close()
