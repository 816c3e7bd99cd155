"""`train --tensorboard`: TensorBoard event files in the run directory, for those who already use it.

A callback of the pipeline's fit, through `torch.utils.tensorboard` (which needs the `tensorboard` package: the
optional extra `pip install 'linear-nets[tensorboard]'`, which `train --tensorboard` checks for before any work:
`cli.common.check_tensorboard`). It writes into `<run>/tensorboard/`:
- after every epoch, the scalars `loss/train`, `accuracy/train`, `accuracy/val` and `accuracy/test` (those measured);
- after every epoch, each class's weights as a picture (`weights/<class>`: red positive, blue negative, on one scale
  centred on 0, as `plotting.plot_class_weights` draws them), for image data;
- at the end, the config as hyperparameters, with the final accuracies as their metrics.
View with `tensorboard --logdir runs/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linear_nets.training import Callback, EpochRecord

SCALARS = (("train_loss", "loss/train"), ("train_accuracy", "accuracy/train"), ("val_accuracy", "accuracy/val"),
           ("test_accuracy", "accuracy/test"))  # fmt: skip
"""EpochRecord field -> TensorBoard tag."""


class TensorBoardLog(Callback):
    """Write a fit's epochs, weight pictures (one per class of `classes`, for images of side `image_side`; None
    for a table: no pictures) and config as TensorBoard events into `directory` (created)."""

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
        if self.image_side is not None:
            for name, picture in zip(self.classes, self.weight_images(), strict=True):
                self.writer.add_image(f"weights/{name}", picture, record.epoch, dataformats="HWC")
        self.writer.flush()

    def weight_images(self) -> Any:
        """Each class's weights as an RGB picture `[classes, side, side, 3]` in [0, 1] (`plotting.WEIGHT_CMAP`)."""
        import matplotlib

        from linear_nets.plotting import WEIGHT_CMAP, class_weight_images, weight_limit

        W = self.fit.model.state_tensors()["W"].detach().cpu().double()
        limit = weight_limit(W)
        pictures = class_weight_images(W, (self.image_side, self.image_side))
        return matplotlib.colormaps[WEIGHT_CMAP]((pictures + limit) / (2 * limit))[..., :3]

    def on_fit_end(self, fit: Any) -> None:
        from linear_nets.pipeline.config import to_dict

        hparams = {k: v for k, v in to_dict(fit.config).items() if isinstance(v, int | float | str | bool)}
        last = fit.history.epochs[-1] if fit.history.epochs else None
        metrics = {f"hparam/{field}": getattr(last, field) for field, _ in SCALARS
                   if last is not None and getattr(last, field) is not None}  # fmt: skip
        self.writer.add_hparams(hparams, metrics, run_name=".")
        self.writer.close()


def log_linreg(directory: str | Path, result: Any, summary: dict[str, Any]) -> None:
    """`train linreg --tensorboard`: a linear-regression fit's events, written once it is done (it takes seconds):
    `loss/train` per SGD epoch, each coefficient as `coefficients/<name>` (and `std_errors/<name>` for least
    squares), and the config as hyperparameters with the summary's numbers (MSE, R²) as their metrics."""
    from torch.utils.tensorboard import SummaryWriter

    from linear_nets.pipeline.config import to_dict

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
    hparams = {k: v for k, v in to_dict(result.config).items() if isinstance(v, int | float | str | bool)}
    metrics = {f"hparam/{key}": summary[key] for key in ("train_mse", "test_mse", "test_r2", "train_r2")
               if isinstance(summary.get(key), int | float)}  # fmt: skip
    writer.add_hparams(hparams, metrics, run_name=".")
    writer.close()
