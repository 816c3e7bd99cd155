"""scikit-learn estimators over the one pipeline: `SoftmaxClassifier` (`fit_softmax`), `LinearRegressor` (`fit_linreg`).

`__init__` stores the parameters (the config's fields) unchanged; `fit` builds and validates the config, so a bad
value is a `ConfigError` naming the parameter. Needs scikit-learn; `import linear_nets` does not import it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without scikit-learn
    raise ImportError(
        "linear_nets.sklearn needs scikit-learn, which is not installed: pip install 'linear-nets[sklearn]'"
    ) from exc

import numpy as np
import torch
from scipy import sparse
from scipy.special import log_softmax

from linear_nets import checks
from linear_nets.closed_form import RankDeficientWarning, default_names
from linear_nets.errors import ConfigError, DataError, TrainingDiverged
from linear_nets.pipeline.callbacks import EarlyStopping
from linear_nets.pipeline.catalog import read_metrics
from linear_nets.pipeline.config import LinregConfig, SoftmaxConfig, to_dict, validate
from linear_nets.pipeline.fit import Dataset, LinregFit, fit_linreg, fit_softmax
from linear_nets.pipeline.runs import Run, read_json, run_config
from linear_nets.pipeline.saved import load_linreg, load_softmax, raw_units, table_spec
from linear_nets.regularization import power_of_two_scales
from linear_nets.training import History

_SGD_ORDER = (
    "minibatch SGD for linear regression weighs a row's loss by w_i, but the check repeats the rows instead: SGD then "
    "shuffles other rows into each minibatch, so the two fits agree only to about 1e-2, not to 1e-7"
)
_EQUIVALENCE = ("check_sample_weight_equivalence_on_dense_data", "check_sample_weight_equivalence_on_sparse_data")
_UNSCALED_SGD = (
    "solver='sgd' with standardize=False diverges on this check's inputs, drawn around 100: minibatch SGD at a fixed "
    "learning rate needs scaled inputs"
)


def _plain(value: Any) -> Any:
    """numpy scalars (from a parameter grid) as Python scalars, so the config's type checks accept them."""
    return value.item() if isinstance(value, np.generic) else value


def _seed(random_state: Any) -> int:
    """The config's `seed` for a scikit-learn `random_state`: an int as it is; None or a `RandomState`: a draw."""
    random_state = _plain(random_state)
    if isinstance(random_state, int) and not isinstance(random_state, bool) and 0 <= random_state < 2**32:
        return random_state
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(
        f"random_state must be None, an int in [0, 2**32 - 1] or a numpy RandomState, got {random_state!r}"
    )


def _dense(X: Any, dtype: type = np.float32) -> np.ndarray:
    """Validated X (dense, or sparse densified) as a fresh C-contiguous array of `dtype`."""
    if sparse.issparse(X):
        dense_bytes = X.shape[0] * X.shape[1] * np.dtype(dtype).itemsize
        if dense_bytes > (limit := checks.MAX_DENSE_BYTES):
            raise ValueError(
                f"sparse X of shape {X.shape} would take {dense_bytes / 2**30:.1f} GiB dense (more than "
                f"{limit / 2**30:g} GiB); these estimators densify sparse input: reduce its dimension first"
            )
        # in the target dtype, one copy: a float64 toarray() and a copy peaked at 6-8 GB for 5000 x 100000 float32
        return np.ascontiguousarray(X.astype(dtype).toarray())
    return np.array(X, dtype=dtype, order="C")  # np.array copies: never a read-only view of the caller's data


def _check_weights(sample_weight: Any, X: Any) -> np.ndarray | None:
    """Validated weights `[n]` (float64, >= 0, not all 0), or None when every row counts once."""
    if sample_weight is None:
        return None
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.any(weights > 0):  # scikit-learn 1.6 lets all zeros through
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return None if np.all(weights == weights[0]) else weights


def _diverged(estimator: BaseEstimator, exc: TrainingDiverged, hint: str) -> TrainingDiverged:
    """The pipeline's `TrainingDiverged` reworded for Python callers (it names the CLI's `--lr`)."""
    error = TrainingDiverged(exc.epoch, exc.step, exc.loss)
    error.args = (
        f"{type(estimator).__name__}: training diverged (the loss became {exc.loss} at epoch {exc.epoch}); lower lr "
        f"(now {estimator.lr!r}) or {hint}",
    )
    return error


class _PipelineEstimator(BaseEstimator):
    """What both estimators share: parameters -> config, input checks, save / load as a run directory."""

    _config_class: ClassVar[type]
    _config_fields: ClassVar[tuple[str, ...]]
    _model: ClassVar[str]  # the run directory's model: "softmax" or "linreg"

    def _config(self, **overrides: Any) -> Any:
        """The config the parameters describe (`random_state` drawn into `seed` unless `overrides` give one,
        scikit-learn's `fit_intercept` into `no_intercept`), validated."""
        for name in ("warm_start", "fit_intercept"):
            if hasattr(self, name) and not isinstance(_plain(getattr(self, name)), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        values = {name: _plain(getattr(self, name)) for name in self._config_fields} | overrides
        if "seed" not in values:
            values["seed"] = _seed(self.random_state)
        if hasattr(self, "fit_intercept"):
            values["no_intercept"] = not _plain(self.fit_intercept)
        try:
            return validate(self._config_class(**values))
        except ConfigError as exc:  # in scikit-learn's words: fit_intercept=False, not the config's no_intercept
            if "no_intercept" not in str(exc):
                raise
            raise ConfigError(str(exc).replace("no_intercept", "fit_intercept=False")) from None

    def _convergence(self) -> list[Any]:
        """The stop at convergence `tol` asks for (none with tol=None): `epochs` is then an upper bound."""
        tol = _plain(self.tol)
        if tol is None:
            return []
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0 or None, got {self.tol!r}")
        return [EarlyStopping([], 5, float(tol), metric=lambda record: -record.train_loss)]  # scikit-learn's stop

    def _partial_config(self, first: bool, **overrides: Any) -> Any:
        """The config of one `partial_fit` call: one epoch, shuffled with another seed each call."""
        config = self._config(epochs=1, **overrides)
        return replace(config, seed=config.seed + (0 if first else self.n_iter_))

    def _add_epoch(self, first: bool, losses: list[float]) -> None:
        """Count one `partial_fit` call in `n_iter_` and append its `losses` to `loss_curve_`."""
        self.n_iter_ = 1 if first else self.n_iter_ + 1
        self.loss_curve_ = [*([] if first else self.loss_curve_), *losses]

    def _check_inputs(self, X: Any, y: Any = "no_validation", *, reset: bool = False, **checks: Any) -> Any:
        """X (and y) checked by scikit-learn's `validate_data`: sparse X kept as CSR/CSC, numbers as float."""
        return validate_data(self, X, y, reset=reset, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
                             **checks)  # fmt: skip

    def __sklearn_tags__(self) -> Any:
        """Sparse input accepted (densified); NaN refused."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator as a new run directory `path`, as `linear-nets train` writes one; return its
        path. A NotFittedError before `fit`; a ConfigError when `path` exists and is not an empty directory."""
        from linear_nets.data.table_spec import TableSpec

        check_is_fitted(self)
        params = {k: _plain(v) for k, v in self.get_params().items() if k not in self._config_fields}
        if not isinstance(params["random_state"], int | None):
            params["random_state"] = None  # a RandomState cannot go into JSON; the fitted model does not need it
        config = self._config(seed=params["random_state"] or 0)  # the run's seed; `params` keeps None as None
        named = hasattr(self, "feature_names_in_")
        names = [str(n) for n in self.feature_names_in_] if named else [f"x{j}" for j in range(self.n_features_in_)]
        target = "y"
        while target in names:  # the schema's target column must not be a feature's
            target = "_" + target
        labels = getattr(self, "classes_", None)
        classes = None if labels is None else tuple(map(str, labels.tolist()))
        spec = TableSpec("regression" if labels is None else "classification", target, tuple(names), classes=classes)
        section = {"class": type(self).__name__, "params": params, "named_features": named}
        if labels is not None:
            section |= {"classes": labels.tolist(), "classes_dtype": labels.dtype.str}
        rows = [{"epoch": epoch, "train_loss": loss} for epoch, loss in enumerate(self.loss_curve_, 1)]
        for row, score in zip(rows, getattr(self, "validation_scores_", None) or [], strict=False):
            row["val_accuracy"] = score
        run = Run.create(self._model, run_config(to_dict(config), {"spec": spec.to_dict()}, {"estimator": section}),
                         path)  # fmt: skip
        meta = {"model": self._model, "impl": config.impl, "num_inputs": len(names), "features": names}
        tensors, summary = self._model_file(names)
        with run.removed_on_error():
            run.write_metrics(rows)
            run.save_model(tensors, meta | ({} if classes is None else {"classes": list(classes)}))
            run.write_summary({"epochs": self.n_iter_, **summary})
        return run.path

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """The fitted estimator in a run directory that `save` or `linear-nets train` wrote, every file verified. A
        ConfigError when `path` does not exist; a DataError when it is not a run of this model or a file is bad."""
        path = Path(path)
        if path.is_file():
            raise DataError(f"{path} is a file, not a run directory: the model file and .json sidecar that save() "
                            "wrote before linear-nets saved estimators as run directories are no longer read; fit "
                            "the estimator again and save it")  # fmt: skip
        run = Run.open(path, model=cls._model)
        config = run.fit_config
        section = (run.config.get("options") or {}).get("estimator") or {}  # none in a run `linear-nets train` wrote
        params = {name: getattr(config, name) for name in cls._config_fields} | {"random_state": config.seed}
        if "fit_intercept" in cls._get_param_names():
            params["fit_intercept"] = not config.no_intercept
        rows = read_metrics(run.path)
        try:
            estimator = cls(**params | section.get("params", {}))
            estimator._config()  # every parameter in range, as fit would check it
            estimator.loss_curve_ = [float(row["train_loss"]) for row in rows]
            estimator.n_iter_ = max(len(rows), 1)  # a least-squares run records no epoch: it is one pass
            if run.spec is not None and section.get("named_features", True):
                estimator.feature_names_in_ = np.asarray(table_spec(run).feature_names, dtype=object)
            estimator._restore(run, section, rows)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # an edited config.json or metrics
            raise DataError(f"{path}: does not describe a {cls.__name__} this version can load "
                            f"({type(exc).__name__}: {exc}); fit and save it again") from None  # fmt: skip
        return estimator


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """The `check_estimator` checks `estimator` is expected to fail, with their reasons: `check_estimator`'s
    `expected_failed_checks` (or, the callable itself, `parametrize_with_checks`').

    Example:
        >>> sorted(expected_failed_checks(LinearRegressor()))
        []
    """
    if not isinstance(estimator, LinearRegressor) or estimator.solver != "sgd":
        return {}
    fails = dict.fromkeys(_EQUIVALENCE, _SGD_ORDER)
    if not estimator.standardize:
        fails.update(dict.fromkeys(("check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in"),
                                   _UNSCALED_SGD))  # fmt: skip
    return fails


class SoftmaxClassifier(ClassifierMixin, _PipelineEstimator):
    """Softmax regression (multinomial logistic regression) trained by `linear_nets.pipeline.fit.fit_softmax`.

    The model and objective, for n examples x_i with classes y_i among k:

        O = x W + b  (W [d, k], b [k]);   P(y = j | x) = softmax(O)_j = exp(O_j) / sum_l exp(O_l)
        minimise  (1 / n) sum_i -log softmax(O_i)_{y_i}  +  (weight_decay / 2) ||W||²    (b is not penalised)

    with x standardised first when `standardize` (the training rows' statistics are kept with the model).

    scikit-learn's `C` is weight_decay = 1 / (C n) for k >= 3 classes and 2 / (C n) for two (n: the sum of the sample
    weights, if any); with `standardize=True` the penalty is on the standardised inputs' weights.

    Parameters (the others as `SoftmaxConfig`'s fields, with defaults for tables of any size and scale; optimizers but
    sgd need impl concise):
        lr: for lbfgs, the line search's first step; with sgd / momentum / adam choose ~0.01-0.1.
        epochs: for lbfgs (scikit-learn's solver), rounds of 10 iterations (`epochs=10` is LogisticRegression's
            `max_iter=100`); at most this many with `early_stopping` or `tol`.
        threads: torch's CPU threads while fitting (None: torch's setting); one is fastest for small tables, on a
            busy machine, and in each worker of a parallel `GridSearchCV`.
        tol: stop once the training loss has not fallen more than `tol` below its best for 5 epochs in a row
            (scikit-learn's `tol` and `n_iter_no_change`); None: run every epoch.
        random_state: int (the pipeline's `seed`), None (a fresh seed per fit) or a numpy RandomState (a seed drawn).
        warm_start: `fit` starts from the previous fit's weights and standardisation (same classes and features).

    Attributes:
        classes_: the sorted labels `[k]`. n_features_in_, feature_names_in_ (from a DataFrame): the inputs.
        coef_ `[k, d]` and intercept_ `[k]` (`[1, d]` and `[1]` for two classes): in raw-input units.
        n_iter_: epochs run by the last `fit`, plus one per `partial_fit` call since; loss_curve_: the mean training
            cross-entropy of each (no penalty); validation_scores_: the validation accuracy after each, or None.
        best_epoch_: the epoch whose weights the model holds (the last, without early stopping).

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = SoftmaxClassifier().fit(X, y)
        >>> clf.predict(X[:2]).tolist(), clf.predict_proba(X[:2]).shape, clf.score(X, y) > 0.95
        ([0, 0], (2, 3), True)
    """

    _config_class = SoftmaxConfig
    _model = "softmax"
    _config_fields = ("impl", "optimizer", "lr", "weight_decay", "batch_size", "epochs", "schedule", "standardize",
                      "val_fraction", "early_stopping", "device", "threads")  # fmt: skip

    def __init__(
        self,
        *,
        impl: str = "concise",
        optimizer: str = "lbfgs",
        lr: float = 1.0,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        epochs: int = 10,
        schedule: str = "constant",
        standardize: bool = True,
        val_fraction: float | None = None,
        early_stopping: int | None = None,
        device: str = "cpu",
        threads: int | None = 1,
        tol: float | None = 1e-4,
        random_state: int | np.random.RandomState | None = 0,
        warm_start: bool = False,
    ) -> None:
        vars(self).update({k: v for k, v in locals().items() if k != "self"})  # stored as given: see _config

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoftmaxClassifier:
        """Train on `X` `[n, d]` (array-like, sparse matrix or DataFrame) and the labels `y` `[n]` (any sortable
        values; at least two classes); with `sample_weight` the loss is sum_i w_i l_i / sum_i w_i. Returns self."""
        config = self._config()
        X, y = self._check_inputs(X, y, reset=True)
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        weights = _check_weights(sample_weight, X)
        present = np.unique(y_encoded if weights is None else y_encoded[weights > 0])
        if present.shape[0] < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data contains only one class"
                f"{' with a positive sample_weight' if weights is not None else ''}: {classes.tolist()[present[0]]!r}"
            )
        history = self._train(config, X, y_encoded, classes, weights, warm=self.warm_start and hasattr(self, "_state"))
        self.n_iter_ = len(history.epochs)
        self.loss_curve_ = history.column("train_loss")
        self.validation_scores_ = history.column("val_accuracy") if config.val_fraction is not None else None
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> SoftmaxClassifier:
        """One epoch over the given rows, from the current weights (random ones on the first call, which needs
        `classes`, every label that will occur, and fits the standardisation); the optimiser's state is not carried
        over, and `val_fraction`, `early_stopping` and `schedule` are ignored. Returns self."""
        first = not hasattr(self, "_state")
        config = self._partial_config(first, val_fraction=None, early_stopping=None, schedule="constant")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        all_classes = unique_labels(classes) if first else self.classes_
        if first and all_classes.shape[0] < 2:
            raise ValueError(f"classes must hold at least 2 classes, got {all_classes.tolist()!r}")
        if not first and classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the last call to partial_fit or fit, was: "
                             f"{self.classes_!r}")  # fmt: skip
        X, y = self._check_inputs(X, y, reset=first)
        unknown = np.setdiff1d(np.unique(y), all_classes)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()!r} that are not in classes {all_classes.tolist()!r}")
        history = self._train(config, X, np.searchsorted(all_classes, y), all_classes,
                              _check_weights(sample_weight, X), warm=not first)  # fmt: skip
        self._add_epoch(first, history.column("train_loss"))
        self.validation_scores_ = None
        return self

    def _train(self, config: SoftmaxConfig, X: Any, y_encoded: np.ndarray, classes: np.ndarray,
               weights: np.ndarray | None, warm: bool) -> History:  # fmt: skip
        """One `fit_softmax` on the encoded rows (from the current weights when `warm`); returns its history."""
        init = None
        if warm:
            if not np.array_equal(classes, self.classes_) or X.shape[1] != self._state["W"].shape[0]:
                raise ValueError("warm_start=True continues the previous fit, which had other classes or another "
                                 "number of features; set warm_start=False to start afresh")  # fmt: skip
            if config.standardize != ("mean" in self._state):
                raise ValueError("warm_start=True cannot switch standardize on or off: set warm_start=False")
            init = {k: v.clone() for k, v in self._state.items()}
        # float64: a weighted fit and the fit of the rows repeated then agree to float64 rounding, not float32's
        data = Dataset((torch.from_numpy(_dense(X, np.float64)), torch.from_numpy(np.asarray(y_encoded, np.int64))),
                       classes=[str(c) for c in classes],
                       weights=None if weights is None else torch.from_numpy(weights))  # fmt: skip
        threads, hint = torch.get_num_threads(), "scale the inputs (standardize=True, or a StandardScaler before it)"
        try:
            result = fit_softmax(config, data, self._convergence(), evaluate_test=False, init=init)
        except TrainingDiverged as exc:
            raise _diverged(self, exc, hint) from None
        finally:
            torch.set_num_threads(threads)  # the pipeline sets `threads` process-wide: only this fit uses it
        state = {k: v.detach().cpu().clone() for k, v in result.model.state_tensors().items()}
        if not all(v.isfinite().all() for v in state.values()):
            last = result.history.epochs[-1].epoch if result.history.epochs else 0
            raise _diverged(self, TrainingDiverged(last, 0, math.nan), hint)
        self.classes_, self._state, self.best_epoch_ = classes, state, int(result.best_epoch)
        self._set_coef()
        return result.history

    def _set_coef(self) -> None:
        """coef_ and intercept_ in raw-input units from W, b (and mean, std): `saved.raw_units`."""
        W, b = (t.numpy().copy() for t in raw_units(self._state))
        if W.shape[1] == 2:
            self.coef_, self.intercept_ = (W[:, 1] - W[:, 0])[None, :], np.array([b[1] - b[0]])
        else:
            self.coef_, self.intercept_ = np.ascontiguousarray(W.T), b

    def _logits(self, X: Any) -> np.ndarray:
        """O = X W + b `[n, k]` in float64 (two classes: O = [0, X @ coef_.T + intercept_], as O_1 - O_0 decides)."""
        check_is_fitted(self)
        scores = _dense(self._check_inputs(X), np.float64) @ self.coef_.T + self.intercept_
        return np.hstack([np.zeros_like(scores), scores]) if self.classes_.shape[0] == 2 else scores

    def decision_function(self, X: Any) -> np.ndarray:
        """The logits O = X @ coef_.T + intercept_ `[n, k]`; for two classes, O_1 - O_0 `[n]` (log-odds of
        `classes_[1]`)."""
        logits = self._logits(X)
        return logits[:, 1] if logits.shape[1] == 2 else logits

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log softmax(O) `[n, k]`: O_j - log sum_l exp(O_l), computed stably in float64."""
        return log_softmax(self._logits(X), axis=1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax(O) `[n, k]`, columns in the order of `classes_`; rows sum to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row: `classes_[argmax_j O_j]` `[n]`."""
        logits = self._logits(X)  # first: unfitted is a NotFittedError, not a missing classes_
        return self.classes_[np.argmax(logits, axis=1)]

    def _model_file(self, names: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return self._state, {"best_epoch": self.best_epoch_}

    def _restore(self, run: Run, section: dict[str, Any], rows: list[dict]) -> None:
        model, _, classes = load_softmax(run, "cpu", torch.float64)  # checked against the run's data and config
        self._state = {k: v.clone() for k, v in model.state_tensors().items()}
        labels = section.get("classes", classes)  # the labels as fit saw them (numbers stay numbers)
        if [str(label) for label in labels] != classes:
            raise ValueError(f"classes {labels!r} are not the run's classes {classes!r}")
        dtype = np.dtype(section.get("classes_dtype", "O"))
        self.classes_ = np.asarray(labels, dtype=object if dtype.kind == "O" else dtype)
        self.n_features_in_ = self._state["W"].shape[0]
        scores = [row.get("val_accuracy") for row in rows]
        self.validation_scores_ = scores if any(s is not None for s in scores) else None
        self.best_epoch_ = int(read_json(run.path / "summary.json", "run summary").get("best_epoch", self.n_iter_))
        self._set_coef()


def _has_sgd(estimator: LinearRegressor) -> bool:
    if estimator.solver != "sgd":
        raise AttributeError(f"partial_fit needs solver='sgd', not {estimator.solver!r}")
    return True


class LinearRegressor(RegressorMixin, _PipelineEstimator):
    """Linear regression y ≈ x w + b trained by `linear_nets.pipeline.fit.fit_linreg`.

    `solver="closed-form"` (the default) returns argmin_{w,b} sum_i (y_i - x_i w - b)² in float64: scikit-learn's
    `LinearRegression` to rounding error when [X, 1] has full column rank, else the minimum-norm solution with a
    `RankDeficientWarning`. `solver="sgd"` runs the book's minibatch SGD (d2l 3.2-3.3) on the mean `loss` over the
    rows; with `standardize` on z = (x - mean) / std, w and b reported in the original units (y is used as given).

    Parameters (the others as `LinregConfig`'s fields; `impl`, `loss`, `huber_delta`, `lr`, `epochs` and `batch_size`
    apply to SGD only; `tol` and `random_state` as `SoftmaxClassifier`'s):
        fit_intercept: False fits y ≈ x w through the origin (least-squares solvers only; intercept_ is then 0).
        warm_start: SGD starts from the previous fit's w and b (the closed form needs no start).

    Attributes:
        coef_: w `[d]` (float64). intercept_: b. n_features_in_, feature_names_in_ (from a DataFrame): the inputs.
        n_iter_: SGD epochs run by the last `fit` (1 for the closed form), plus one per `partial_fit` call since;
            loss_curve_: the mean loss over the training rows after each (the closed form: of its solution).

    `partial_fit` exists with `solver="sgd"` only; for the closed form over data that arrives in chunks, see
    `linear_nets.closed_form.least_squares_streaming`.

    Example:
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.linear_model import LinearRegression
        >>> X, y = load_diabetes(return_X_y=True)
        >>> reg = LinearRegressor().fit(X, y)
        >>> bool(np.allclose(reg.coef_, LinearRegression().fit(X, y).coef_, rtol=1e-6)), round(reg.score(X, y), 3)
        (True, 0.518)
    """

    _model = "linreg"
    _config_class = LinregConfig
    _config_fields = ("impl", "loss", "huber_delta", "solver", "lr", "epochs", "batch_size", "standardize")

    def __init__(
        self,
        *,
        impl: str = "concise",
        loss: str = "squared",
        huber_delta: float | None = None,
        solver: str = "closed-form",
        fit_intercept: bool = True,
        lr: float = 0.03,
        epochs: int = 3,
        batch_size: int = 10,
        standardize: bool = True,
        tol: float | None = 1e-4,
        random_state: int | np.random.RandomState | None = 0,
        warm_start: bool = False,
    ) -> None:
        vars(self).update({k: v for k, v in locals().items() if k != "self"})  # stored as given: see _config

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegressor:
        """Fit on `X` `[n, d]` (array-like, sparse matrix or DataFrame) and the numeric targets `y` `[n]`; each row's
        loss counts `sample_weight` w_i >= 0 times. Returns self."""
        config = self._config()
        X, y = self._check_inputs(X, y, reset=True, y_numeric=True)
        weights = _check_weights(sample_weight, X)
        if config.solver != "sgd":
            return self._least_squares(config, X, y, weights)
        warm = self.warm_start and hasattr(self, "coef_")
        if warm and self.coef_.shape[0] != X.shape[1]:
            raise ValueError("warm_start=True continues the previous fit, which had another number of features; "
                             "set warm_start=False to start afresh")  # fmt: skip
        self.loss_curve_ = self._sgd(config, X, y, weights, warm)
        self.n_iter_ = len(self.loss_curve_)
        return self

    @available_if(_has_sgd)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegressor:
        """One SGD epoch over the given rows, from the current w and b (random ones on the first call); with
        `standardize`, on each call's own statistics (w and b are kept in the original units). Returns self."""
        first = not hasattr(self, "coef_")
        config = self._partial_config(first)
        X, y = self._check_inputs(X, y, reset=first, y_numeric=True)
        self._add_epoch(first, self._sgd(config, X, y, _check_weights(sample_weight, X), warm=not first))
        return self

    def _least_squares(self, config: LinregConfig, X: Any, y: np.ndarray, weights: np.ndarray | None
                       ) -> LinearRegressor:  # fmt: skip
        """argmin_{w,b} sum_i w_i (y_i - x_i w - b)²: least squares through the origin on the rows sqrt(w_i) [x_i, 1],
        columns beyond `checks.MAGNITUDE_LIMIT` scaled by powers of two (exactly). No `standardize`: the minimum-norm
        solution of a rank-deficient design is the one in X's units."""
        X64, y64 = _dense(X, np.float64), np.array(y, dtype=np.float64)
        largest = np.abs(X64).max(axis=0, initial=0.0)
        scales = np.ones_like(largest)
        design = X64  # not copied unless a column needs scaling
        if ((largest > checks.MAGNITUDE_LIMIT) | ((largest > 0) & (largest < 1 / checks.MAGNITUDE_LIMIT))).any():
            scales = power_of_two_scales(torch.from_numpy(largest)).numpy()
            design = X64 * scales
        names = [str(n) for n in getattr(self, "feature_names_in_", default_names(X64.shape[1]))]
        if not config.no_intercept:
            design, names = np.hstack([design, np.ones((design.shape[0], 1))]), [*names, "intercept"]
        s = None if weights is None else np.sqrt(weights)
        rows, targets = (design, y64) if s is None else (design * s[:, None], y64 * s)
        result = self._fit_linreg(replace(config, no_intercept=True), (torch.from_numpy(rows),
                                  torch.from_numpy(targets)), names=names)  # fmt: skip
        w = result.w.numpy()
        self.coef_ = (w if config.no_intercept else w[:-1]) * scales  # back to X's own units, exactly
        self.intercept_ = 0.0 if config.no_intercept else float(w[-1])
        residual = X64 @ self.coef_ + self.intercept_ - y64
        self.loss_curve_, self.n_iter_ = [float(0.5 * np.average(residual**2, weights=weights))], 1
        return self

    def _sgd(self, config: LinregConfig, X: Any, y: np.ndarray, weights: np.ndarray | None, warm: bool
             ) -> list[float]:  # fmt: skip
        """`fit_linreg` by minibatch SGD (from coef_ and intercept_ when `warm`); returns the loss of each epoch."""
        largest = float(abs(X).max()) if sparse.issparse(X) else float(np.abs(X).max(initial=0.0))
        if largest > float(np.finfo(np.float32).max):  # not infinities reported later as "NaN or inf in the data"
            raise ValueError(f"X holds values up to {largest:.3g}, beyond float32's range (about 3.4e38), in which SGD "
                             "trains: scale X, or use solver='closed-form' (float64)")  # fmt: skip
        init = (torch.tensor(self.coef_), torch.tensor(self.intercept_, dtype=torch.float64)) if warm else None
        w = None if weights is None else torch.from_numpy(weights)
        data = (torch.from_numpy(_dense(X, np.float32)), torch.from_numpy(np.array(y, dtype=np.float32)))
        result = self._fit_linreg(config, data, self._convergence(), init=init, weights=w)
        self.coef_, self.intercept_ = result.w.numpy().copy(), float(result.b)
        return result.history.column("train_loss")

    def _fit_linreg(self, config: LinregConfig, data: Any, *args: Any, **kwargs: Any) -> LinregFit:
        """`fit_linreg`, with the warnings it collected raised here and a divergence worded for Python callers."""
        try:
            result = fit_linreg(config, data, *args, **kwargs)
        except TrainingDiverged as exc:
            hint = "scale X and y (standardize=True; TransformedTargetRegressor for y), or use solver='closed-form'"
            raise _diverged(self, exc, hint) from None
        for message in result.warnings:
            warnings.warn(message, RankDeficientWarning, stacklevel=4)
        return result

    def predict(self, X: Any) -> np.ndarray:
        """ŷ = X @ coef_ + intercept_ `[n]`, in float64."""
        check_is_fitted(self)
        return _dense(self._check_inputs(X), np.float64) @ self.coef_ + self.intercept_

    def _model_file(self, names: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {"w": torch.from_numpy(self.coef_), "b": torch.tensor(self.intercept_, dtype=torch.float64)}
        coefficients = dict(zip(names, self.coef_.tolist(), strict=True))
        return tensors, {"coefficients": coefficients, "intercept": self.intercept_}

    def _restore(self, run: Run, section: dict[str, Any], rows: list[dict]) -> None:
        w, b, _, _ = load_linreg(run)  # checked against the run's data: names, shapes, dtypes, finite
        self.coef_, self.intercept_, self.n_features_in_ = w.numpy().copy(), float(b), len(w)


__all__: Sequence[str] = ["LinearRegressor", "SoftmaxClassifier", "expected_failed_checks"]
