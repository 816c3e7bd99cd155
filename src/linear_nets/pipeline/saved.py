"""A trained model from its run directory, and what `evaluate` and `predict` compute with it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from linear_nets import checks
from linear_nets.errors import ConfigError, DataError
from linear_nets.models import SoftmaxModel
from linear_nets.pipeline.config import SoftmaxConfig, SyntheticData, from_dict
from linear_nets.pipeline.fit import build_model, resolve_device
from linear_nets.pipeline.runs import Run, check_state, refused
from linear_nets.softmax import stable_cross_entropy


def load_softmax(run: Run, device: str | None = None, dtype: torch.dtype = torch.float32
                 ) -> tuple[SoftmaxModel, SoftmaxConfig, list[str]]:  # fmt: skip
    """A softmax run's model (computing in `dtype`), config and classes; `DataError` unless they fit the run's data."""
    from linear_nets.data.fashion_mnist import CLASSES

    config = run.fit_config
    if device is not None:
        config = dataclasses.replace(config, device=device)
    tensors, meta = run.load_model()
    spec = table_spec(run) if run.spec is not None else None
    inputs, known = (spec.num_features, list(spec.classes)) if spec else ((config.resize or 28) ** 2, list(CLASSES))
    num_inputs = meta.get("num_inputs", inputs)  # runs of 0.1 did not record it
    if type(num_inputs) is not int or num_inputs != inputs:
        raise DataError(f"{run.path / 'model.json'}: meta.num_inputs must be {inputs} (the inputs of the run's data), "
                        f"got {num_inputs!r}")  # fmt: skip
    classes = meta.get("classes", known)
    classes = known if type(classes) is int else classes  # runs of 0.1 saved a count
    if classes != known:
        raise DataError(f"{run.path / 'model.json'}: meta.classes must be the run's {len(known)} classes {known}, "
                        f"got {classes!r}")  # fmt: skip
    W = tensors.get("W")
    if W is None or tuple(W.shape) != (inputs, len(known)):  # before building: a tampered size allocates nothing
        raise DataError(f"{run.path / 'model.safetensors'}: W must have shape [{inputs}, {len(known)}] (inputs x "
                        f"classes), got {None if W is None else list(W.shape)}")  # fmt: skip
    model = build_model(config, num_inputs, len(classes))
    if W.dtype == torch.float64:
        model.to(torch.float64)
    check_state(tensors, model.state_tensors(), run.path / "model.safetensors")
    model.load_state_tensors(tensors)
    model.to(dtype)
    model.to(resolve_device(config.device))
    return model, config, classes


def load_linreg(run: Run) -> tuple[Tensor, Tensor, Tensor | None, dict[str, Any]]:
    """A linear-regression run's weights `w` `[features]` and bias `b` `[]` (float64, finite), the coefficients'
    covariance (least squares: `[p, p]`; SGD: None) and the model's description, checked against the run's data."""
    num_features = table_spec(run).num_features if run.spec is not None else len(synthetic_options(run).true_w)
    tensors, meta = run.load_model()
    expected = {"w": torch.zeros(num_features, dtype=torch.float64), "b": torch.zeros((), dtype=torch.float64)}
    if "cov" in tensors:
        p = num_features + (1 if meta.get("fit_intercept", True) else 0)
        expected["cov"] = torch.zeros(p, p, dtype=torch.float64)
    check_state(tensors, expected, run.path / "model.safetensors")
    return tensors["w"], tensors["b"], tensors.get("cov"), meta


def prediction_intervals(X: Tensor, w: Tensor, b: Tensor, cov: Tensor, meta: dict[str, Any], level: float
                         ) -> dict[str, Tensor]:  # fmt: skip
    """Intervals around each prediction ŷ = xw + b at confidence `level`, named as statsmodels' `summary_frame`:
    the mean's, ŷ ∓ q·√(a C aᵀ) with a = (x, 1) and C the coefficients' covariance, and a new observation's,
    ŷ ∓ q·√(a C aᵀ + σ̂²); q is Student's t quantile on the residual degrees of freedom (normal after a robust one)."""
    from scipy import stats

    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1) if meta.get("fit_intercept", True) else X
    mean = X @ w + b
    mean_var = ((A @ cov) * A).sum(1).clamp(min=0)
    tail = (1 - level) / 2
    q = float(stats.t.isf(tail, meta["df_resid"]) if meta.get("use_t", True) else stats.norm.isf(tail))
    mean_se, obs_se = mean_var.sqrt(), (mean_var + meta["scale"]).sqrt()
    return {"mean_ci_lower": mean - q * mean_se, "mean_ci_upper": mean + q * mean_se,
            "obs_ci_lower": mean - q * obs_se, "obs_ci_upper": mean + q * obs_se}  # fmt: skip


def confusion_matrix(y: Tensor, y_pred: Tensor, num_classes: int) -> Tensor:
    """C[i, j] = number of examples of true class i predicted as class j.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 0],
                [1, 1]])
    """
    return torch.bincount(y * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclasses.dataclass
class Scores:
    """A classifier's mean cross-entropy, accuracy, confusion matrix, and each example's probabilities and class."""

    loss: float
    accuracy: float
    confusion: Tensor
    n: int
    probabilities: Tensor | None = None
    labels: Tensor | None = None


def score_classifier(model: SoftmaxModel, batches: Any, num_classes: int) -> Scores:
    """Mean cross-entropy (stable, from the logits), accuracy and confusion matrix over (X, y) batches."""
    loss_sum, predictions, labels, probabilities = 0.0, [], [], []
    with torch.no_grad():
        for X, y in batches:
            logits = model.logits(X)
            loss_sum += stable_cross_entropy(logits, y).sum().item()
            predictions.append(logits.argmax(dim=1))
            probabilities.append(torch.softmax(logits.double(), dim=1).cpu())
            labels.append(y)
    y, y_pred = torch.cat(labels).cpu(), torch.cat(predictions).cpu()
    accuracy = (y == y_pred).double().mean().item()
    return Scores(loss_sum / len(y), accuracy, confusion_matrix(y, y_pred, num_classes), len(y),
                  torch.cat(probabilities), y)  # fmt: skip


def synthetic_problem(data: SyntheticData, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """A linreg run's synthetic data (true w, X, y), regenerated exactly from its data options and seed."""
    from linear_nets.data.synthetic import synthetic_data

    true_w = torch.tensor(data.true_w, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    X, y = synthetic_data(true_w, data.true_b, data.samples, data.noise, generator=generator)
    return true_w, X, y


def synthetic_options(run: Run) -> SyntheticData:
    """The options a synthetic-data linreg run generated its data with (regenerate it with `synthetic_problem`)."""
    options = run.config.get("data", {}).get("synthetic") or run.config.get("args")  # 0.1 kept them with the args
    if not isinstance(options, dict) or not options:
        raise DataError(f"{run.path / 'config.json'}: data.synthetic is missing: the run's data cannot be regenerated")
    with refused(f"{run.path / 'config.json'}: data.synthetic: ", ConfigError):
        return from_dict(SyntheticData, {p.name: options[p.name] for p in SyntheticData.PARAMS if p.name in options})


def linreg_on_its_data(run: Run) -> dict[str, Any]:
    """A synthetic-data linreg run's mean squared loss on its regenerated data and its estimation errors."""
    from linear_nets.losses import squared_loss

    config, synthetic = run.fit_config, synthetic_options(run)
    w, b, _, _ = load_linreg(run)
    true_w, X, y = synthetic_problem(synthetic, config.seed)
    return {
        "n": len(y),
        "seed": config.seed,
        "loss": squared_loss(X.double() @ w + b, y.double()).mean().item(),
        "error_w": (true_w.double() - w).tolist(),
        "error_b": synthetic.true_b - b.item(),
    }


# --- image files to classify ----------------------------------------------------------------------------------------


def image_classifier(run: Run) -> tuple[SoftmaxModel, SoftmaxConfig, list[str]]:
    """`load_softmax` for a run trained on images; a `ConfigError` says what to do with any other run."""
    if run.spec is not None:
        raise ConfigError(f"{run.path} was trained on a table: pass --data FILE to predict its rows")
    if run.model == "linreg":
        raise ConfigError(f"{run.path} is a linear regression on synthetic data: it has no images to predict; "
                          "predict the rows of a table with a run trained on one (--data FILE)")  # fmt: skip
    return load_softmax(run)


def read_image(path: str | Path, side: int) -> Any:
    """An image file as a `[1, side, side]` float tensor in [0, 1], grey and resized with antialiasing; `DataError`
    when it is missing, too large (bytes, or pixels by its header) or not an image."""
    import io

    import numpy as np
    from matplotlib import image as mpimg
    from PIL import Image, UnidentifiedImageError

    if not Path(path).exists():
        raise DataError(f"image {path} does not exist")
    data = checks.read_file_bytes(path, "image", checks.MAX_IMAGE_BYTES)
    try:
        pil_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # PIL's own, higher limit: ours speaks
        try:
            with Image.open(io.BytesIO(data)) as header:  # lazy: reads the header, decodes nothing
                width, height = header.size
        finally:
            Image.MAX_IMAGE_PIXELS = pil_limit
        if width * height > checks.MAX_IMAGE_PIXELS:
            raise DataError(f"image {path} is {width} x {height} pixels, more than the {checks.MAX_IMAGE_PIXELS:,} "
                            f"(4096 x 4096) predict decodes: shrink it first")  # fmt: skip
        raw = mpimg.imread(io.BytesIO(data), format=Path(path).suffix.lower()[1:] or None)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"image {path} cannot be read as an image: not a format PIL knows") from None
    except Exception as exc:  # PIL/matplotlib raise many types for unreadable files
        raise DataError(f"image {path} cannot be read as an image: {exc}") from None
    # PNGs come back as floats in [0, 1], other formats (JPEG) as uint8 in [0, 255]: decide by type, not by value
    pixels = raw.astype(np.float32) / 255.0 if raw.dtype == np.uint8 else np.asarray(raw, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=2)
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise DataError(f"image {path} has shape {pixels.shape}; expected a 2-D grey or colour image")
    x = torch.from_numpy(np.ascontiguousarray(pixels))[None, None]
    if x.shape[-2:] != (side, side):
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
    return x[0].clamp_(0.0, 1.0)


# --- runs trained on a table -----------------------------------------------------------------------------------------


def table_spec(run: Run) -> Any:
    """The training schema a table run recorded (to match a new table's columns by name)."""
    from linear_nets.data.table_spec import TableSpec

    if run.spec is None:
        data = "Fashion-MNIST images" if run.model == "softmax" else "synthetic data"
        raise DataError(f"{run.path} was trained on {data}, not a table: it has no columns to match a table's to; "
                        "leave out --data")  # fmt: skip
    return TableSpec.from_dict(run.spec)  # checked when the run was opened (`runs.check_run_config`)


def linreg_predictions(X: Tensor, w: Tensor, b: Tensor, cov: Tensor | None = None, meta: dict | None = None,
                       interval: float | None = None) -> dict[str, Tensor]:  # fmt: skip
    """`prediction` ŷ = Xw + b (float64), and with `interval` `prediction_intervals`' (`DataError` without `cov`)."""
    columns = {"prediction": X.to(torch.float64) @ w + b}
    if interval is not None:
        if cov is None or meta is None:
            raise DataError("this run has no covariance of its coefficients (trained by SGD, or saved by a "
                            "scikit-learn estimator): prediction intervals need a least-squares run "
                            "(--solver closed-form)")  # fmt: skip
        columns |= prediction_intervals(X.to(torch.float64), w, b, cov, meta, interval)
    return columns


def table_na_values(run: Run) -> list[str]:
    """The CSV texts a table run read as missing values (`--na-values`), to read new tables as it read its own."""
    return list(((run.config.get("options") or {}).get("table") or {}).get("na_values") or [])


def table_predictions(run: Run, path: str | os.PathLike, keep: list[str] | None = None,
                      interval: float | None = None) -> Any:  # fmt: skip
    """A pyarrow table: the columns `keep` names, then a prediction per row of `path` (softmax: and probabilities)."""
    import pyarrow as pa

    from linear_nets.data.tables import load_features, open_table

    spec, na_values = table_spec(run), table_na_values(run)
    if interval is not None and run.model != "linreg":
        raise DataError("--interval applies to linear-regression runs; a softmax run predicts probabilities")
    kept = _kept_columns(open_table(path, na_values), keep, run.model, spec) if keep else None
    X = load_features(path, spec, dtype=torch.float64 if run.model == "linreg" else torch.float32, na_values=na_values)
    if run.model == "linreg":
        columns = {k: v.numpy() for k, v in linreg_predictions(X, *load_linreg(run), interval).items()}
    else:
        proba = load_softmax(run)[0].predict_proba(X)
        columns = {f"predicted_{spec.target}": [spec.classes[i] for i in proba.argmax(dim=1).tolist()]}
        columns |= {f"probability_{name}": proba[:, k].tolist() for k, name in enumerate(spec.classes)}
    predicted = pa.table(columns)
    if kept is None:
        return predicted
    names = [*kept.column_names, *predicted.column_names]
    return pa.Table.from_arrays([*kept.columns, *predicted.columns], names=names)


def _kept_columns(source: Any, keep: list[str], model: str, spec: Any) -> Any:
    """The input columns `keep` names (["*"]: all), CSV's as text; one `DataError` names every bad one."""
    names = source.schema.names if keep == ["*"] else keep
    missing = [c for c in names if c not in source.schema.names]
    written = ["prediction"] if model == "linreg" else [f"predicted_{spec.target}",
                                                         *(f"probability_{c}" for c in spec.classes)]  # fmt: skip
    clash = [c for c in names if c in written]
    problems = [f"--keep names {', '.join(map(repr, missing))}, not a column of {source.name} (its columns: "
                f"{', '.join(map(repr, source.schema.names))})"] if missing else []  # fmt: skip
    if clash:
        problems.append(f"column {', '.join(map(repr, clash))} of {source.name} has the name of a prediction column: "
                        "rename it or leave it out of --keep")  # fmt: skip
    if problems:
        raise DataError("; and ".join(problems))
    if not source.format.startswith("csv"):
        return source.read(list(names))
    import pyarrow as pa

    # a CSV column kept as read: an id's digits and leading zeros stay as they were (`007` is not 7.0)
    types = {c: source.schema.field(c).type for c in names}
    return source.read(list(names), {c: t if pa.types.is_null(t) else pa.string() for c, t in types.items()})


# --- a run from Python --------------------------------------------------------------------------------------------


def _rows(spec: Any, table: Any, dtype: torch.dtype = torch.float32, na_values: Sequence[str] = ()) -> Tensor:
    """X of a DataFrame, pyarrow Table or RecordBatch, or a table file, encoded with the training schema."""
    import pyarrow as pa

    from linear_nets.data.tables import load_features

    if isinstance(table, str | os.PathLike):
        return load_features(table, spec, dtype=dtype, na_values=na_values)
    if type(table).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if not isinstance(table, pa.Table | pa.RecordBatch):
        raise DataError(f"expected a pandas DataFrame, a pyarrow Table or a table file's path, got "
                        f"{type(table).__name__}")  # fmt: skip
    return spec.encode_features(table, dtype=dtype)


@dataclasses.dataclass
class LinearRegressionRun:
    """A table's linear-regression run, as `linear_nets.load` returns it: ŷ = Xw + b; `spec` is its training schema."""

    spec: Any
    w: Tensor
    b: Tensor
    na_values: list[str] = dataclasses.field(default_factory=list)

    @property
    def coefficients(self) -> dict[str, float]:
        """Weight of each encoded feature by name (`area`, `colour=red`), in the columns' own units."""
        return dict(zip(self.spec.feature_names, self.w.tolist(), strict=True))

    @property
    def intercept(self) -> float:
        return self.b.item()

    def predict(self, table: Any) -> Any:
        """ŷ for each row of `table` (a DataFrame, a pyarrow Table or a file's path), as a float64 numpy array."""
        X = _rows(self.spec, table, torch.float64, self.na_values)  # float32 would round the inputs to 7 digits
        return linreg_predictions(X, self.w, self.b)["prediction"].numpy()


@dataclasses.dataclass
class SoftmaxRun:
    """A softmax run, as `linear_nets.load` returns it: softmax(XW + b) of each row over `classes`; `spec` is a table
    run's training schema (None for Fashion-MNIST: `predict` then takes image tensors)."""

    model: SoftmaxModel
    classes: list[str]
    spec: Any = None
    na_values: list[str] = dataclasses.field(default_factory=list)

    def _inputs(self, table: Any) -> Tensor:
        return _rows(self.spec, table, na_values=self.na_values) if self.spec is not None else torch.as_tensor(table)

    def predict_proba(self, table: Any) -> Any:
        """The probability of each class for each row, a float32 numpy array `[n, classes]`."""
        with torch.no_grad():
            return self.model.predict_proba(self._inputs(table)).cpu().numpy()

    def predict(self, table: Any) -> Any:
        """The most probable class of each row, by name (a numpy array of strings)."""
        import numpy as np

        return np.array(self.classes, dtype=object)[self.predict_proba(table).argmax(axis=1)]

    @property
    def coefficients(self) -> dict[str, dict[str, float]]:
        """Each class's weight of each encoded feature, in the raw inputs' units (W / std): {class: {feature: w}}."""
        W, _ = raw_units(self.model.state_tensors())
        names = self.spec.feature_names if self.spec is not None else [f"x{i}" for i in range(W.shape[0])]
        return {c: dict(zip(names, W[:, k].tolist(), strict=True)) for k, c in enumerate(self.classes)}

    @property
    def intercept(self) -> dict[str, float]:
        """Each class's bias in the raw inputs' units (b − mean · W / std)."""
        return dict(zip(self.classes, raw_units(self.model.state_tensors())[1].tolist(), strict=True))


def raw_units(state: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """A softmax model's W `[d, k]` and b `[k]` (its `state_tensors()`) for the raw inputs, in float64: with the
    standardisation's mean m and std s folded in, O = ((x - m) / s) W + b = x (W / s) + (b - m · W / s).

    Example:
        >>> W, b = raw_units({"W": torch.ones(1, 2), "b": torch.zeros(2), "mean": torch.tensor([3.0]),
        ...                   "std": torch.tensor([2.0])})
        >>> W.tolist(), b.tolist()
        ([[0.5, 0.5]], [-1.5, -1.5])
    """
    W, b = state["W"].double(), state["b"].double().reshape(-1)
    if "mean" in state:
        W = W / state["std"].double().reshape(-1, 1)
        b = b - state["mean"].double().reshape(-1) @ W
    return W, b


def load(run_dir: str | os.PathLike) -> LinearRegressionRun | SoftmaxRun:
    """The fitted model of a run directory (`predict`, `coefficients`); `ConfigError` or `DataError` when `run_dir` is
    not a run, was tampered with, or is linreg on synthetic data.

    Example:
        >>> import contextlib, io, pathlib, tempfile
        >>> import pyarrow as pa
        >>> from linear_nets.cli import main
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "t.csv").write_text("x,y\\n" + "".join(f"{i},{2 * i + 1}\\n" for i in range(20)))
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     code = main(["train", "linreg", "--data", str(folder / "t.csv"), "--target", "y", "--solver",
        ...                  "closed-form", "--out", str(folder / "run")])
        >>> model = load(folder / "run")
        >>> {k: round(v, 6) for k, v in model.coefficients.items()}, model.predict(pa.table({"x": [100.0]})).round(6)
        ({'x': 2.0}, array([201.]))
    """
    run = Run.open(run_dir)
    if run.model == "softmax":
        model, _, classes = load_softmax(run)
        spec = table_spec(run) if run.spec is not None else None
        return SoftmaxRun(model, classes, spec, table_na_values(run))
    if run.spec is None:
        raise ConfigError(f"{run.path} is a linear regression on synthetic data: it has no table columns to predict "
                          "from (its estimates are in summary.json)")  # fmt: skip
    return LinearRegressionRun(table_spec(run), *load_linreg(run)[:2], table_na_values(run))


def check_table_path(target: Path, source: str | os.PathLike | None = None, overwrite: bool = True) -> Path:
    """`target` if a .csv or .parquet file in a writable folder, not `source`, new or `overwrite`; else `DataError`."""
    if target.suffix.lower() not in (".csv", ".parquet"):
        raise DataError(f"--out {target}: write predictions to a .csv or .parquet file")
    if target.is_dir():
        raise DataError(f"--out {target} is a directory: name a .csv or .parquet file")
    if source is not None and target.exists() and os.path.samefile(target, source):
        raise DataError(f"--out {target} is the table --data reads: write the predictions to another file")
    if target.exists() and not overwrite:
        raise DataError(f"--out {target} exists: choose a new name, or pass --overwrite to replace it")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise DataError(f"--out {target}: the directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"--out {target}: cannot write in {parent} (permission denied)")
    return target


def write_table(table: Any, target: Path) -> None:
    """Write a pyarrow table as CSV or Parquet (by the name's suffix, see `check_table_path`), atomically."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from linear_nets.atomic import atomic_open

    check_table_path(target)
    with atomic_open(target, "wb") as f:  # the one write helper: a full disk or read-only place is one line
        pq.write_table(table, f) if target.suffix.lower() == ".parquet" else pacsv.write_csv(table, f)


def score_table(run: Run, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """A table run's scores on the labelled table `path`, or on its own held-out test rows; `where` says which."""
    from linear_nets.data.tables import load_table
    from linear_nets.pipeline.tables import TableOptions, held_out_rows, regression_scores

    spec = table_spec(run)
    # least squares read its table as float64 and scored it so: the same rows, the same figures
    least_squares = run.model == "linreg" and run.config.get("config", {}).get("solver", "sgd") != "sgd"
    dtype = torch.float64 if least_squares else torch.float32
    if path is not None:
        loaded = load_table(path, spec.target, spec=spec, na_values=table_na_values(run), dtype=dtype)
        batches, where = [(loaded.X, loaded.y)], str(path)
    elif not (run.config.get("options") or {}).get("table"):
        raise DataError(f"{run.path} was saved by a scikit-learn estimator: it records no table to score; pass a "
                        "labelled table as data", "data")  # fmt: skip
    else:
        options = TableOptions(**run.config["options"]["table"])
        if options.test_data is None and options.test_fraction == 0:
            raise DataError("the run held out no test rows (test_fraction 0): pass --data FILE to score a table",
                            "test_fraction")  # fmt: skip
        seed = run.config.get("config", {}).get("seed", 0)
        batches, where = held_out_rows(options, spec, seed, run.config.get("data", {}), dtype)
    if run.model == "linreg":
        scores = regression_scores(batches, *load_linreg(run)[:2])
        return {"where": where, "mse": scores.mse, "r2": scores.r2, "n": scores.rows}
    scores = score_classifier(load_softmax(run)[0], batches, len(spec.classes))
    return {"where": where, "accuracy": scores.accuracy, "loss": scores.loss, "n": scores.n,
            "confusion": scores.confusion.tolist(), "classes": list(spec.classes)}  # fmt: skip
