"""The scikit-learn estimators (`linear_nets.sklearn`): scikit-learn's own estimator checks, its tools (Pipeline,
GridSearchCV, cross_val_score, clone, pickle), saving without pickle, input handling, and agreement with scikit-learn's
LinearRegression and LogisticRegression as independent references.

The classifier trains with one torch thread (`threads=1`, its default): on a busy 2-core machine two threads are many
times slower.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from linear_nets.errors import ConfigError, DataError
from linear_nets.sklearn import LinearRegressor, SoftmaxClassifier, expected_failed_checks


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Whatever a test does, the next test finds torch's thread count as it was; scikit-learn's BLAS uses one
    thread meanwhile (its references are slow on a busy 2-core machine with two)."""
    threads = torch.get_num_threads()
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    return X, y


# --- scikit-learn's estimator checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "estimator",
    # small epochs: the checks fit ~85 times on tiny data; 2 L-BFGS rounds (20 iterations) pass every check
    [SoftmaxClassifier(epochs=2), LinearRegressor(), LinearRegressor(solver="sgd", epochs=5)],
    ids=["SoftmaxClassifier", "LinearRegressor", "LinearRegressor-sgd"],
)
def test_check_estimator_passes_every_check_but_the_declared_ones(estimator):
    expected = expected_failed_checks(estimator)
    assert all(reason for reason in expected.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, expected_failed_checks=expected, on_fail=None)
    status = {r["check_name"]: r["status"] for r in results}
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert not failed
    assert {name for name, s in status.items() if s == "xfail"} == set(expected)  # each declared failure does fail
    assert sum(s == "passed" for s in status.values()) >= 50


def test_expected_failures_are_few_and_explained():
    assert expected_failed_checks(SoftmaxClassifier()) == {}  # weights weigh the loss: the weight checks pass
    assert expected_failed_checks(LinearRegressor()) == {}
    assert len(expected_failed_checks(LinearRegressor(solver="sgd"))) == 2
    assert "check_fit_idempotent" in expected_failed_checks(LinearRegressor(solver="sgd", standardize=False))


# --- scikit-learn's tools ---------------------------------------------------------------------------------------------


def test_pipeline_with_standard_scaler(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), SoftmaxClassifier(standardize=False)).fit(X, y)
    assert pipe.score(X, y) > 0.95
    assert pipe.predict_proba(X[:5]).shape == (5, 3)


def test_grid_search_over_lr_and_weight_decay(blobs):
    X, y = blobs
    grid = {"lr": np.array([0.05, 0.2]), "weight_decay": [0.0, 1e-3]}  # numpy scalars from a grid are accepted
    search = GridSearchCV(SoftmaxClassifier(optimizer="sgd", epochs=5, batch_size=16), grid, cv=3).fit(X, y)
    assert set(search.best_params_) == {"lr", "weight_decay"}
    assert search.best_score_ > 0.9
    assert len(search.cv_results_["mean_test_score"]) == 4


def test_cross_val_score(iris):
    X, y = iris
    scores = cross_val_score(SoftmaxClassifier(), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    r2 = cross_val_score(LinearRegressor(), *load_diabetes(return_X_y=True), cv=3)
    assert r2.mean() > 0.4


def test_clone_copies_parameters_unchanged_and_no_fitted_state(iris):
    X, y = iris
    fitted = SoftmaxClassifier(lr=0.5, weight_decay=1e-3, random_state=3).fit(X, y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "coef_")


def test_parameters_are_stored_unchanged_and_validated_in_fit_naming_the_parameter(iris):
    X, y = iris
    bad = SoftmaxClassifier(lr=-1, batch_size="big")  # no error yet: scikit-learn stores parameters as given
    assert bad.lr == -1 and bad.batch_size == "big"
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got -1$"):
        bad.fit(X, y)
    with pytest.raises(ConfigError, match="early_stopping needs a validation split: set val_fraction"):
        SoftmaxClassifier(early_stopping=3).fit(X, y)
    with pytest.raises(ValueError, match="optimizer momentum needs impl concise"):
        SoftmaxClassifier(impl="manual", optimizer="momentum").fit(X, y)
    with pytest.raises(ValueError, match="solver closed-form minimises squared errors; it cannot use loss huber"):
        LinearRegressor(loss="huber").fit(X, y)
    with pytest.raises(
        ValueError, match=r"random_state must be None, an int in \[0, 2\*\*32 - 1\] or a numpy RandomState"
    ):
        SoftmaxClassifier(random_state="seven").fit(X, y)


def test_a_diverged_fit_s_error_keeps_its_python_wording_through_pickle():
    # cross_val_score(n_jobs=2) and other process pools hand the error back pickled: it must still name `lr`
    from linear_nets.errors import TrainingDiverged
    from linear_nets.pipeline.sklearn import _diverged

    error = _diverged(LinearRegressor(lr=10.0), TrainingDiverged(1, 3, float("inf")), "scale X and y")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and "lower lr (now 10.0)" in str(again) and "--lr" not in str(again)
    assert (again.epoch, again.step, again.loss) == (1, 3, float("inf"))
    plain = TrainingDiverged(2, 0, 7.5, start=0.7, hint="standardise")
    assert str(pickle.loads(pickle.dumps(plain))) == str(plain) and pickle.loads(pickle.dumps(plain)).start == 0.7


def test_pickle_round_trip_predicts_the_same(iris):
    X, y = iris
    clf = SoftmaxClassifier().fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    reg = LinearRegressor().fit(X, y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))


def test_joblib_round_trip(tmp_path, iris):
    joblib = pytest.importorskip("joblib")  # what cross-validation workers and model files use
    X, y = iris
    clf = SoftmaxClassifier(epochs=2).fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), clf.predict_proba(X))


# --- save and load: a run directory --------------------------------------------------------------------------------

RUN_FILES = {"config.json", "metrics.csv", "metrics.jsonl", "model.safetensors", "model.json", "summary.json"}


@pytest.mark.parametrize(
    "fitted",
    [
        lambda X, y: SoftmaxClassifier(val_fraction=0.2, early_stopping=2, random_state=None).fit(
            X, np.array(["setosa", "versicolor", "virginica"])[y]
        ),
        lambda X, y: SoftmaxClassifier(impl="manual", optimizer="sgd", lr=0.1, standardize=False, tol=None,
                                       random_state=np.random.RandomState(1))
        .partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y),
        lambda X, y: LinearRegressor(fit_intercept=False).fit(X, y.astype(float), np.linspace(0.5, 2, len(y))),
        lambda X, y: LinearRegressor(solver="sgd", loss="huber", epochs=4, tol=None, warm_start=True).fit(X, y * 1.0),
    ],
    ids=["labels-validation", "partial_fit-RandomState", "weighted-through-origin", "sgd-huber"],
)  # fmt: skip
def test_save_writes_a_run_directory_that_load_reads_back_exactly(tmp_path, iris, fitted):
    """The same parameters (a RandomState, which JSON cannot hold, as None), every fitted attribute, and
    predictions equal bit for bit (the weights are saved in float64)."""
    X, y = iris
    model = fitted(X, y)
    path = model.save(tmp_path / "run")
    assert path == tmp_path / "run" and {p.name for p in path.iterdir()} == RUN_FILES
    loaded = type(model).load(path)
    params = model.get_params()
    if isinstance(params["random_state"], np.random.RandomState):
        params["random_state"] = None
    assert loaded.get_params() == params
    for name in ("coef_", "intercept_", "classes_", "n_features_in_", "n_iter_", "loss_curve_", "validation_scores_",
                 "best_epoch_"):  # fmt: skip
        assert hasattr(loaded, name) == hasattr(model, name), name
        np.testing.assert_equal(getattr(loaded, name, None), getattr(model, name, None))
    assert not hasattr(loaded, "feature_names_in_")  # fitted on an array: no names, as before saving
    assert json.loads((path / "config.json").read_text())["data"]["spec"]["features"] == ["x0", "x1", "x2", "x3"]
    if hasattr(model, "classes_"):
        assert loaded.classes_.dtype == model.classes_.dtype
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_saved_estimator_is_a_run_that_linear_nets_load_and_the_command_line_read(tmp_path, monkeypatch, capsys):
    """`linear_nets.load`, `linear-nets predict`, `evaluate` and `report` take the directory `save` wrote: its
    feature names are the table's columns, its target column is `y`."""
    import pandas as pd

    import linear_nets
    from linear_nets.cli import main

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(8)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    values = X @ [1.0, -2.0, 0.5] + 3 + 0.1 * rng.normal(size=60)
    labels = np.where(X["a"] > 0, "up", "down")
    reg, clf = LinearRegressor().fit(X, values), SoftmaxClassifier().fit(X, labels)
    reg.save("lin"), clf.save("soft")
    assert list(LinearRegressor.load("lin").feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_allclose(linear_nets.load("lin").predict(X), reg.predict(X), rtol=1e-12)
    assert list(linear_nets.load("soft").predict(X)) == list(clf.predict(X))
    np.testing.assert_allclose(linear_nets.load("soft").predict_proba(X), clf.predict_proba(X), rtol=1e-5)  # float32
    X.to_csv("x.csv", index=False)
    X.assign(y=values).to_csv("lin.csv", index=False)
    X.assign(y=labels).to_csv("soft.csv", index=False)
    assert main(["predict", "soft", "--data", "x.csv", "--out", "p.csv"]) == 0
    assert main(["predict", "lin", "--data", "x.csv", "--out", "q.csv", "--interval", "0.95"]) == 2
    assert "no covariance of its coefficients (trained by SGD, or saved by a scikit-learn" in capsys.readouterr().err
    assert list(pd.read_csv("p.csv")["predicted_y"]) == list(clf.predict(X))
    capsys.readouterr()
    assert main(["evaluate", "lin", "--data", "lin.csv"]) == 0
    assert f"R² {reg.score(X, values):.4f}" in capsys.readouterr().out
    assert main(["evaluate", "soft", "--data", "soft.csv"]) == 0
    assert f"accuracy {clf.score(X, labels):.4f}" in capsys.readouterr().out
    assert main(["evaluate", "soft"]) == 2  # no table of its own to score: says to give one
    assert "records no table to score; pass a labelled table as --data" in capsys.readouterr().err
    for run in ("lin", "soft"):
        assert main(["report", run, "--out", f"{run}.html"]) == 0
    page = Path("soft.html").read_text()
    assert "X of a scikit-learn estimator" in page and "records no test rows" in page
    assert "intercept" in Path("lin.html").read_text()  # the coefficient table


def test_load_refuses_foreign_or_tampered_runs_and_save_never_overwrites(tmp_path, iris):
    X, y = iris
    path = SoftmaxClassifier(epochs=1).fit(X, y).save(tmp_path / "m")
    with pytest.raises(DataError, match="is a run of model 'softmax', not 'linreg'"):
        LinearRegressor.load(path)
    with pytest.raises(ConfigError, match="exists and is not an empty directory"):
        SoftmaxClassifier(epochs=1).fit(X, y).save(path)
    model = path / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-4])
    with pytest.raises(DataError, match="truncated or was modified"):
        SoftmaxClassifier.load(path)


def test_load_of_a_model_file_in_the_format_before_run_directories_says_to_save_again(tmp_path):
    """`save` wrote safetensors and a .json sidecar before it wrote run directories: that file is named, not read."""
    from linear_nets.pipeline.runs import save_tensors

    path = tmp_path / "clf.safetensors"
    save_tensors(path, {"W": torch.zeros(4, 3), "b": torch.zeros(3)}, {"format": "linear-nets/sklearn/1"})
    for name in (path, path.with_suffix(".json")):
        with pytest.raises(DataError, match=r"is a file, not a run directory: .*fit the estimator again and save it"):
            SoftmaxClassifier.load(name)


def test_save_leaves_nothing_when_it_fails(tmp_path, iris, monkeypatch):
    """A save that cannot start leaves nothing, and one that fails part way (a full disk at the model file) removes
    its directory: there is never half a run."""
    import errno

    from linear_nets.errors import WriteError

    X, y = iris
    clf = SoftmaxClassifier(epochs=1).fit(X, y)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot create the run directory"):
        clf.save(tmp_path / "file" / "run")  # its parent is a file (root may write anywhere: no chmod here)

    def full(path, data):
        raise WriteError(path, errno.ENOSPC)

    monkeypatch.setattr("linear_nets.pipeline.runs.atomic_write_bytes", full)
    with pytest.raises(WriteError, match=r"model\.safetensors: No space left on device"):
        clf.save(tmp_path / "run")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no run, no temporary


def test_save_before_fit_is_not_fitted(tmp_path):
    with pytest.raises(NotFittedError):
        SoftmaxClassifier().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --- inputs ---------------------------------------------------------------------------------------------------------


def test_string_labels_are_sorted_and_predicted_as_strings(iris):
    X, y = iris
    names = np.array(["virginica", "setosa", "versicolor"])[y]  # not in sorted order of codes
    clf = SoftmaxClassifier().fit(X, names)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.score(X, names) > 0.95
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_binary_decision_function_is_the_log_odds_of_the_second_class():
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")
    clf = SoftmaxClassifier().fit(X, labels)
    decision = clf.decision_function(X)
    assert clf.coef_.shape == (1, X.shape[1]) and clf.intercept_.shape == (1,) and decision.shape == (X.shape[0],)
    np.testing.assert_allclose(decision, X @ clf.coef_[0] + clf.intercept_[0], rtol=1e-4, atol=1e-3)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(np.log(proba[:, 1] / proba[:, 0]), decision, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(decision > 0).astype(int)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), atol=1e-9)


def test_multiclass_coef_gives_the_logits_in_raw_units(iris):
    X, y = iris
    clf = SoftmaxClassifier().fit(X, y)  # standardize=True: coef_ folds the statistics back in
    np.testing.assert_allclose(clf.decision_function(X), X @ clf.coef_.T + clf.intercept_, rtol=1e-4, atol=1e-4)


def _dataframe(X: np.ndarray, names: list[str]):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=names)


def test_dataframe_feature_names(iris):
    X, y = iris
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    frame = _dataframe(X, names)
    clf = SoftmaxClassifier().fit(frame, y)
    assert clf.feature_names_in_.tolist() == names
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        clf.predict(frame[names[::-1]])
    reg = LinearRegressor().fit(frame, y.astype(float))
    assert reg.feature_names_in_.tolist() == names


def test_arrow_table_feature_names_without_pandas(iris):
    pa = pytest.importorskip("pyarrow")  # a runtime dependency of linear-nets: this runs even without pandas
    X, y = iris
    table = pa.table({f"x{i}": X[:, i] for i in range(4)})
    clf = SoftmaxClassifier(epochs=2).fit(table, y)
    assert clf.feature_names_in_.tolist() == ["x0", "x1", "x2", "x3"]


def test_sparse_input_is_densified(iris):
    X, y = iris
    weights = 1 + np.arange(X.shape[0]) % 2  # repeated rows of a sparse matrix too
    dense = SoftmaxClassifier().fit(X, y, sample_weight=weights)
    from_sparse = SoftmaxClassifier().fit(sparse.coo_matrix(X), y, sample_weight=weights)
    np.testing.assert_array_equal(from_sparse.predict_proba(sparse.csr_matrix(X)), dense.predict_proba(X))
    reg = LinearRegressor().fit(sparse.csc_matrix(X), y.astype(float))
    np.testing.assert_allclose(reg.coef_, LinearRegressor().fit(X, y.astype(float)).coef_, rtol=1e-12)


@pytest.mark.parametrize("Estimator", [SoftmaxClassifier, LinearRegressor])
def test_not_fitted_before_fit(Estimator):
    estimator = Estimator()
    for method in ("predict", "predict_proba", "decision_function", "predict_log_proba", "score"):
        if hasattr(estimator, method):
            args = (np.zeros((2, 3)), np.zeros(2)) if method == "score" else (np.zeros((2, 3)),)
            with pytest.raises(NotFittedError, match="is not fitted yet"):
                getattr(estimator, method)(*args)


@pytest.mark.parametrize("Estimator", [SoftmaxClassifier, LinearRegressor])
def test_scikit_learn_worded_input_errors(Estimator, blobs):
    X, y = blobs
    estimator = Estimator()
    for value, message in ((np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")):
        bad = X.copy()
        bad[0, 0] = value
        with pytest.raises(ValueError, match=message):
            clone(estimator).fit(bad, y)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        clone(estimator).fit(X[:, 0], y)
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        clone(estimator).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\)"):
        clone(estimator).fit(X[:, :0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clone(estimator).fit(X, y[:-1])
    fitted = clone(estimator).fit(X, y)
    with pytest.raises(ValueError, match=f"X has 3 features, but {Estimator.__name__} is expecting 4 features"):
        fitted.predict(X[:, :3])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(bad)


def test_a_single_class_is_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=r"needs samples of at least 2 classes.*only one class: 'a'"):
        SoftmaxClassifier().fit(X, np.full(X.shape[0], "a"))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        SoftmaxClassifier().fit(X, X[:, 0])


def test_tiny_data_trains_with_a_batch_larger_than_the_data():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9]])
    clf = SoftmaxClassifier(optimizer="sgd", batch_size=256, epochs=3).fit(X, ["b", "a", "b"])
    assert clf.n_iter_ == 3 and clf.predict(X).shape == (3,)
    assert LinearRegressor(solver="sgd", batch_size=100).fit(X, [1.0, 2.0, 3.0]).n_iter_ == 3
    with pytest.raises(ValueError, match="leaves an empty validation set"):  # only a split that was asked for
        SoftmaxClassifier(val_fraction=0.1).fit(X, ["b", "a", "b"])


# --- sample weights -------------------------------------------------------------------------------------------------


def test_whole_number_weights_equal_repeated_rows(blobs):
    """Weights weigh the loss; an integer weight then gives the fit of the row repeated (up to the rounding of sums
    taken in another order), a zero weight the fit without the row."""
    X, y = blobs
    weights = np.arange(X.shape[0]) % 3  # 0, 1, 2: drop, keep, double
    weighted = SoftmaxClassifier().fit(X, y, sample_weight=weights)
    repeated = SoftmaxClassifier().fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    # float64 training: sums of ~100 terms in another order differ by ~1e-14 relative; 100 L-BFGS iterations carry
    # that along, far below the 1e-7 scikit-learn's own weight checks ask for (and far below the weights' effect)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-9)
    assert np.abs(weighted.predict_proba(X) - SoftmaxClassifier().fit(X, y).predict_proba(X)).max() > 1e-2
    halves = SoftmaxClassifier().fit(X, y, sample_weight=weights / 2)  # proportional: the same weighted mean
    np.testing.assert_allclose(halves.predict_proba(X), weighted.predict_proba(X), rtol=1e-7, atol=1e-9)
    reg_w = LinearRegressor().fit(X, y.astype(float), sample_weight=weights)
    reg_r = LinearRegressor().fit(np.repeat(X, weights, axis=0), np.repeat(y, weights).astype(float))
    # float64 least squares of a well-conditioned 40 x 5 design: both solutions to ~1e-14 relative
    np.testing.assert_allclose(reg_w.coef_, reg_r.coef_, rtol=1e-10)


def test_any_non_negative_weights_weigh_the_loss(blobs):
    X, y = blobs
    weights = np.random.default_rng(0).uniform(0.1, 3.0, X.shape[0])
    weights[0] = np.sqrt(2)  # not a ratio of whole numbers: weighs the loss all the same
    SoftmaxClassifier(epochs=1).fit(X, y, sample_weight=weights)
    reg = LinearRegressor().fit(X, y.astype(float), sample_weight=weights)
    # the closed form solves the weighted normal equations: Aᵀ W (A θ − y) = 0 with A = [X, 1]
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    residual = A @ np.append(reg.coef_, reg.intercept_) - y
    assert np.abs(A.T @ (weights * residual)).max() < 1e-9 * np.abs(A.T @ (weights * y)).max()
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        LinearRegressor().fit(X, y, sample_weight=np.zeros(X.shape[0]))
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        LinearRegressor().fit(X, y, sample_weight=-weights)


def test_sgd_linear_regression_weighs_each_rows_loss():
    """SGD weighs the loss, it does not repeat rows: from the same start, one full-batch step on weights w moves the
    model exactly as the gradient of sum_i w_i l_i / sum_i w_i says (float32 arithmetic: 1e-5 relative), any
    weights, whole numbers or not; and at convergence the weighted fit is the weighted least-squares solution."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)
    weights = rng.uniform(0.1, 3.0, 64)
    options = {"solver": "sgd", "standardize": False, "batch_size": 64, "epochs": 1, "lr": 0.1, "tol": None}
    reg = LinearRegressor(**options).fit(X, y, sample_weight=weights)
    start = LinearRegressor(**options | {"lr": 1e-30}).fit(X, y)  # the same seed: the same initial weights
    w0, b0 = start.coef_, start.intercept_
    r = X @ w0 + b0 - y  # squared loss (1/2) r²: its gradient is r x
    share = weights / weights.sum()
    np.testing.assert_allclose(reg.coef_, w0 - 0.1 * (share * r) @ X, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reg.intercept_, b0 - 0.1 * (share * r).sum(), rtol=1e-5, atol=1e-6)
    many = LinearRegressor(**options | {"epochs": 400, "batch_size": 16}).fit(X, y, sample_weight=weights)
    exact = LinearRegressor(standardize=False).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(many.coef_, exact.coef_, atol=2e-2)  # SGD's noise at lr 0.1, not rounding


def test_predictions_of_a_row_do_not_depend_on_the_rows_scored_with_it(iris):
    X, y = iris
    for estimator in (SoftmaxClassifier(epochs=2).fit(X, y), LinearRegressor().fit(X, y.astype(float))):
        method = getattr(estimator, "decision_function", estimator.predict)
        together = method(X)
        # float64 products of 4 terms: a row's result in another BLAS kernel differs by a few ulps at most
        np.testing.assert_allclose(np.concatenate([method(X[i : i + 1]) for i in range(len(X))]), together,
                                   rtol=1e-12, atol=1e-12)  # fmt: skip


# --- partial_fit and warm_start -------------------------------------------------------------------------------------


def test_partial_fit_one_epoch_per_call(blobs):
    X, y = blobs
    clf = SoftmaxClassifier(optimizer="sgd", lr=0.1, batch_size=10)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:30], y[:30], classes=[0, 1, 2])
    for _ in range(4):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:2], [0, 7])
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxClassifier is expecting 4 features"):
        clf.partial_fit(X[:, :3], y)


def test_linear_regressor_partial_fit_only_with_sgd():
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()  # SGD needs scaled inputs and targets
    assert not hasattr(LinearRegressor(), "partial_fit")  # the closed form has no epochs
    reg = LinearRegressor(solver="sgd", lr=0.1, batch_size=16)
    for _ in range(20):
        reg.partial_fit(X, y)
    assert reg.n_iter_ == 20 and reg.loss_curve_[-1] < reg.loss_curve_[0]
    assert reg.score(X, y) > 0.4


def test_warm_start_continues_from_the_previous_weights(blobs):
    X, y = blobs
    cold = SoftmaxClassifier(optimizer="sgd", lr=0.02, epochs=1, batch_size=60)
    cold_losses = [cold.fit(X, y).loss_curve_[0] for _ in range(3)]
    assert cold_losses[0] == cold_losses[1] == cold_losses[2]  # every fit starts afresh, the same way
    warm = clone(cold).set_params(warm_start=True)
    warm_losses = [warm.fit(X, y).loss_curve_[0] for _ in range(3)]
    assert warm_losses[0] > warm_losses[1] > warm_losses[2]
    with pytest.raises(ValueError, match="warm_start=True continues the previous fit"):
        warm.fit(X[:, :3], y)
    reg = LinearRegressor(solver="sgd", epochs=1, lr=0.01, standardize=False, warm_start=True)
    y_float = X @ np.array([1.0, -2.0, 0.5, 0.0])
    assert reg.fit(X, y_float).loss_curve_[0] > reg.fit(X, y_float).loss_curve_[0]


# --- agreement with scikit-learn ----------------------------------------------------------------------------------


def test_closed_form_equals_linear_regression_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    ours = LinearRegressor(solver="closed-form").fit(X, y)
    reference = LinearRegression().fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, rtol=1e-6)
    assert abs(ours.score(X, y) - reference.score(X, y)) < 1e-10


def test_standardize_reports_coefficients_in_original_units():
    X, y = load_diabetes(return_X_y=True)
    X = X * np.array([1, 10, 100, 1000, 1, 1, 1, 1, 0.1, 0.01])  # columns in very different units
    plain = LinearRegressor(standardize=False).fit(X, y)
    np.testing.assert_allclose(LinearRegressor().fit(X, y).coef_, plain.coef_, rtol=1e-9)
    sgd = LinearRegressor(solver="sgd", epochs=20, lr=0.01).fit(X, (y - y.mean()) / y.std())
    assert sgd.score(X, (y - y.mean()) / y.std()) > 0.45  # would diverge without standardize


@pytest.mark.parametrize("loader", [load_digits, load_wine, load_breast_cancer], ids=["digits", "wine", "cancer"])
def test_accuracy_within_0_02_of_logistic_regression(loader):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    reference = LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)
    ours = SoftmaxClassifier().fit(X_train, y_train).score(X_test, y_test)  # the defaults
    assert abs(ours - reference) <= 0.02, (ours, reference)


@pytest.mark.parametrize("loader", [load_wine, load_breast_cancer], ids=["multiclass", "binary"])
def test_weight_decay_maps_to_logistic_regressions_c(loader):
    """The class docstring's mapping: wd = 1 / (C n), or 2 / (C n) for two classes, gives LogisticRegression's
    solution (same data, no standardisation inside)."""
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    C, n, k = 0.1, X.shape[0], len(np.unique(y))
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    ours = SoftmaxClassifier(standardize=False, weight_decay=(1 if k > 2 else 2) / (C * n)).fit(X, y)
    scale = np.abs(reference.coef_).max()
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-3 * scale)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, atol=1e-3 * scale)


# --- importing without scikit-learn ---------------------------------------------------------------------------------


def test_the_package_imports_without_scikit_learn_and_this_module_says_how_to_get_it():
    code = """
import sys
sys.modules["sklearn"] = None  # as if scikit-learn were not installed: `import sklearn` raises ImportError
import linear_nets, linear_nets.pipeline.fit, linear_nets.cli
assert "linear_nets.sklearn" not in sys.modules
try:
    import linear_nets.sklearn
except ImportError as exc:
    print(exc)
else:
    raise SystemExit("linear_nets.sklearn imported without scikit-learn")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install 'linear-nets[sklearn]'" in result.stdout


@pytest.mark.parametrize("weighted", [False, True])
def test_linear_regressor_without_intercept_equals_scikit_learns(weighted):
    """fit_intercept=False fits through the origin: scikit-learn's LinearRegression(fit_intercept=False) to rounding
    (κ·ε with κ < 10 for these Gaussian features: 1e-10 relative leaves room for any BLAS)."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 3))
    y = X @ [1.0, -2.0, 0.5] + 4 + rng.standard_normal(60)
    weight = rng.uniform(0, 3, 60) if weighted else None
    ours = LinearRegressor(fit_intercept=False).fit(X, y, sample_weight=weight)
    reference = LinearRegression(fit_intercept=False).fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-10)
    assert ours.intercept_ == 0.0
    with pytest.raises(ValueError, match="fit_intercept"):
        LinearRegressor(fit_intercept=False, solver="sgd").fit(X, y)


def _edit_json(name, change):
    def edit(run):
        document = json.loads((run / name).read_text())
        change(document)
        (run / name).write_text(json.dumps(document))

    return edit


@pytest.mark.parametrize(
    ("edit", "cause"),
    [
        (_edit_json("config.json", lambda d: d["config"].update(lr=-0.1)), "lr must be"),
        (_edit_json("config.json", lambda d: d["options"]["estimator"].update(classes=["a", "a", "b"])),
         "are not the run's classes"),
        (_edit_json("config.json", lambda d: d["options"]["estimator"].update(classes_dtype="?!")), "TypeError"),
        (_edit_json("config.json", lambda d: d["options"]["estimator"]["params"].update(unknown=1)), "TypeError"),
        (_edit_json("config.json", lambda d: d["options"]["estimator"]["params"].update(warm_start="yes")),
         "warm_start must be true or false"),
        (_edit_json("config.json", lambda d: d["data"]["spec"].pop("features")), "training schema is malformed"),
        (_edit_json("summary.json", lambda d: d.update(best_epoch="last")), "ValueError"),
        (lambda run: (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": "low"}\n'), "ValueError"),
    ],
)  # fmt: skip
def test_load_of_an_edited_run_is_one_data_error(tmp_path, edit, cause):
    """A run's JSON files are text anyone can edit (model.safetensors' SHA-256 guards the tensors only): whatever
    they say wrong is a DataError naming it, never a KeyError or a model with a negative learning rate."""
    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.array(["a", "b", "c"] * 10)
    path = SoftmaxClassifier(epochs=1).fit(X, y).save(tmp_path / "run")
    edit(path)
    with pytest.raises(DataError, match=cause):
        SoftmaxClassifier.load(path)


def test_epochs_is_an_upper_bound_once_the_loss_stops_falling():
    """epochs=10**12 on 120 rows: SGD stops at convergence (`tol`), as scikit-learn's estimators stop at
    `max_iter`'s tolerance; tol=None runs every epoch asked for."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=120)
    model = LinearRegressor(solver="sgd", epochs=10**12, lr=0.1).fit(X, y)
    assert 5 <= model.n_iter_ < 200 and model.score(X, y) > 0.99
    assert LinearRegressor(solver="sgd", epochs=7, tol=None).fit(X, y).n_iter_ == 7
    labels = np.where(X[:, 0] > 0, "up", "down")
    assert SoftmaxClassifier(optimizer="sgd", epochs=10**12, tol=1e-3).fit(X, labels).n_iter_ < 500
    with pytest.raises(ValueError, match="tol must be a finite number >= 0 or None"):
        LinearRegressor(solver="sgd", tol=-1.0).fit(X, y)


def test_sparse_input_is_densified_once_in_its_final_dtype():
    """The one dense copy is the array the fit uses: measured by tracemalloc's peak, below 1.5x its own size (it was
    3x: a float64 toarray(), then a float32 copy of it)."""
    import tracemalloc

    from scipy import sparse as sp

    from linear_nets.pipeline.sklearn import _dense

    X = sp.random(2000, 3000, density=0.001, format="csr", random_state=0)
    tracemalloc.start()
    dense = _dense(X, np.float32)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert dense.dtype == np.float32 and dense.flags.c_contiguous and peak < 1.5 * dense.nbytes
    np.testing.assert_array_equal(dense, X.toarray().astype(np.float32))


def test_load_takes_a_run_directory_and_predicts_what_the_run_predicts(tmp_path, monkeypatch, capsys):
    """`Estimator.load(RUN_DIR)`: the model a `linear-nets train` run wrote, as a fitted estimator whose predictions
    are the run's own (`linear-nets predict`), to float64 rounding (1e-12 relative)."""
    import pandas as pd

    from linear_nets.cli import main
    from linear_nets.errors import DataError

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    frame["y"] = frame @ [1.0, -2.0, 0.5] + 3 + 0.1 * rng.normal(size=80)
    frame["label"] = np.where(frame["a"] > 0, "up", "down")
    frame.to_csv("t.csv", index=False)
    base = ["--data", "t.csv", "--features", "a,b,c"]
    assert main(["train", "linreg", *base, "--target", "y", "--solver", "closed-form", "--out", "lin"]) == 0
    assert main(["train", "softmax", *base, "--target", "label", "--epochs", "3", "--out", "soft"]) == 0
    for run, estimator in (("lin", LinearRegressor), ("soft", SoftmaxClassifier)):
        assert main(["predict", run, "--data", "t.csv", "--out", f"{run}.csv"]) == 0
        model = estimator.load(run)
        assert list(model.feature_names_in_) == ["a", "b", "c"]
        predicted = pd.read_csv(f"{run}.csv")
        if run == "lin":
            np.testing.assert_allclose(model.predict(frame[["a", "b", "c"]]), predicted["prediction"], rtol=1e-12)
        else:
            assert list(model.predict(frame[["a", "b", "c"]])) == list(predicted["predicted_label"])
            np.testing.assert_allclose(model.predict_proba(frame[["a", "b", "c"]])[:, 1], predicted["probability_up"],
                                       rtol=1e-5)  # fmt: skip  # the run predicts in float32
    with pytest.raises(DataError, match="is a run of model 'linreg', not 'softmax'"):
        SoftmaxClassifier.load("lin")


@pytest.mark.parametrize("scale", [1e39, 1e300, 1e-200])
@pytest.mark.parametrize("weighted", [False, True])
def test_linear_regressor_fits_columns_far_outside_float32s_range_like_scikit_learn(scale, weighted):
    """The closed form scales such columns by exact powers of two (least squares alone refuses columns beyond 1e150,
    whose squares leave float64), so it fits what scikit-learn's LinearRegression fits; SGD, which trains in float32,
    says why it cannot. κ of these Gaussian columns is below 10: 1e-10 relative leaves room for any BLAS."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(6)
    X = rng.normal(size=(100, 3)) * scale
    y = X / scale @ [1.0, 2.0, 3.0] + 0.1 * rng.normal(size=100)
    weight = rng.uniform(0.5, 2.0, 100) if weighted else None
    ours, reference = LinearRegressor().fit(X, y, weight), LinearRegression().fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-10)
    assert ours.score(X, y) == pytest.approx(reference.score(X, y), rel=1e-10)
    if scale > 1e38:
        with pytest.raises(ValueError, match="beyond float32's range"):
            LinearRegressor(solver="sgd").fit(X, y)


@pytest.mark.parametrize("scale", [1e39, 1e200, 1e300])
def test_softmax_classifier_standardises_inputs_whose_squares_overflow(scale):
    """The standardisation's sum of squares is taken on columns scaled by exact powers of two, so inputs near 1e300
    (whose squares overflow float64) are standardised as inputs near 1 are: the same predictions."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "a", "b")
    reference = SoftmaxClassifier().fit(X, labels)
    scaled = SoftmaxClassifier().fit(X * scale, labels)
    assert list(scaled.predict(X * scale)) == list(reference.predict(X))
    np.testing.assert_allclose(scaled.predict_proba(X * scale), reference.predict_proba(X), rtol=1e-6, atol=1e-9)
