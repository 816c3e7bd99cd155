"""`train linreg --solver closed-form` on a table, as a practitioner runs it: the OLS summary printed and saved,
against statsmodels on a real table, the same in memory and streamed, without an intercept, with categories, with
prediction intervals; and the bad tables that must give one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm

from linear_nets.cli import main

# Every number of the summary within 1e-8 relative of statsmodels: both are float64 factorisations of designs with a
# condition number below 1e4 here, so they agree to about κ·ε ≈ 1e-12; 1e-8 is the agreement the summary promises.
CLOSE = {"rel": 1e-8}


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """scikit-learn's diabetes table (442 rows, 10 features, raw scale), as CSV and as Parquet in 4-row groups."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    folder = tmp_path_factory.mktemp("diabetes")
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), folder / "diabetes.csv")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "diabetes.parquet", row_group_size=4)
    return folder, frame


def train(folder: Path, *args: str) -> dict:
    """Train on a table of `folder` into a new run directory `folder/run-N`; summary.json's contents."""
    out = folder / f"run-{len(list(folder.glob('run-*')))}"
    assert main(["train", "linreg", "--target", "target", "--solver", "closed-form", "--test-fraction", "0",
                 *args, "--out", str(out)]) == 0  # fmt: skip
    (folder / "latest").unlink(missing_ok=True)
    (folder / "latest").symlink_to(out.name)
    return json.loads((out / "summary.json").read_text())


def assert_matches(summary: dict, fit, names: list[str]) -> None:
    """summary.json's statistics against a statsmodels fit whose columns are `names` (the intercept as "const")."""
    keyed = {"const" if k == "intercept" else k: k for k in [*summary["standard_errors"]]}
    coefficients = summary["coefficients"] | ({"intercept": summary["intercept"]} if "const" in keyed else {})
    for j, name in enumerate(names):
        ours = keyed[name]
        assert coefficients[ours] == pytest.approx(fit.params.iloc[j], **CLOSE), name
        assert summary["standard_errors"][ours] == pytest.approx(fit.bse.iloc[j], **CLOSE), name
        assert summary["t_values"][ours] == pytest.approx(fit.tvalues.iloc[j], **CLOSE), name
        assert summary["p_values"][ours] == pytest.approx(fit.pvalues.iloc[j], **CLOSE), name
        assert summary["conf_int"][ours] == pytest.approx(list(fit.conf_int().iloc[j]), **CLOSE), name
    for key, value in [("residual_std", np.sqrt(fit.scale)), ("train_r2", fit.rsquared), ("adj_r2", fit.rsquared_adj),
                       ("f_statistic", fit.fvalue), ("f_pvalue", fit.f_pvalue), ("log_likelihood", fit.llf),
                       ("aic", fit.aic), ("bic", fit.bic), ("condition_number", fit.condition_number)]:  # fmt: skip
        assert summary[key] == pytest.approx(value, **CLOSE), key
    assert (summary["df_model"], summary["df_resid"]) == (fit.df_model, fit.df_resid)


@pytest.mark.parametrize("cov", ["nonrobust", "HC3"])
def test_the_summary_of_a_real_table_equals_statsmodels_in_memory_and_streamed(diabetes, cov, capsys):
    folder, frame = diabetes
    X = sm.add_constant(frame.drop(columns="target"))
    reference = sm.OLS(frame["target"], X).fit(cov_type=cov)
    in_memory = train(folder, "--data", str(folder / "diabetes.csv"), "--cov", cov)
    out = capsys.readouterr().out
    assert "least squares (QR, float64)" in out and f"covariance {cov}" in out
    assert "P>|t|" in out if cov == "nonrobust" else "P>|z|" in out
    assert_matches(in_memory, reference, list(X.columns))
    assert in_memory["cov_type"] == cov and in_memory["conf_level"] == 0.95
    streamed = train(folder, "--data", str(folder / "diabetes.parquet"), "--stream", "--cov", cov)
    assert_matches(streamed, reference, list(X.columns))


def test_no_intercept_reports_the_uncentred_r2(diabetes):
    folder, frame = diabetes
    reference = sm.OLS(frame["target"], frame.drop(columns="target")).fit()
    summary = train(folder, "--data", str(folder / "diabetes.csv"), "--no-intercept", "--alpha", "0.1")
    assert summary["intercept"] == 0.0 and "intercept" not in summary["standard_errors"]
    assert summary["conf_level"] == pytest.approx(0.9)
    for name, (low, high) in zip(frame.columns[:-1], reference.conf_int(alpha=0.1).to_numpy(), strict=True):
        assert summary["conf_int"][name] == pytest.approx([low, high], **CLOSE)
    assert summary["train_r2"] == pytest.approx(reference.rsquared, **CLOSE)  # statsmodels' is uncentred here too
    assert summary["df_model"] == 10 and summary["fit_intercept"] is False


def houses(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    area = rng.uniform(40, 200, n)
    price = 3 * area + np.select([colour == "red", colour == "green"], [40.0, -25.0], 0.0) + rng.normal(0, 20, n)
    return pd.DataFrame({"area": area, "colour": colour, "price": price})


@pytest.mark.parametrize("stream", [False, True])
def test_categories_use_treatment_coding_beside_an_intercept(tmp_path, stream, capsys):
    """The first category (sorted: blue) is the reference: full rank, a standard error for every coefficient, the
    same numbers as statsmodels with the dummies a formula's C(colour) makes."""
    frame = houses()
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "houses.parquet", row_group_size=16)
    args = ["--data", str(tmp_path / "houses.parquet"), "--target", "price", "--categorical", "colour"]
    assert main(["train", "linreg", "--solver", "closed-form", "--test-fraction", "0", *args,
                 *(["--stream"] if stream else []), "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    assert "rank" not in capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert list(summary["coefficients"]) == ["area", "colour=green", "colour=red"]
    dummies = pd.get_dummies(frame[["area", "colour"]], columns=["colour"], drop_first=True, dtype=float)
    reference = sm.OLS(frame["price"], sm.add_constant(dummies.rename(columns=lambda c: c.replace("_", "=")))).fit()
    assert_matches(summary, reference, ["const", "area", "colour=green", "colour=red"])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["spec"]["coding"] == "treatment"


def test_onehot_coding_beside_an_intercept_is_rank_deficient_and_says_which_column(tmp_path, capsys):
    houses().to_csv(tmp_path / "houses.csv", index=False)
    assert main(["train", "linreg", "--solver", "closed-form", "--data", str(tmp_path / "houses.csv"), "--target",
                 "price", "--categorical", "colour", "--categorical-coding", "onehot", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rank 4 < 5 columns: 'colour=" in err and "' is a linear combination" in err


@pytest.mark.parametrize("stream", [False, True])
def test_prediction_intervals_equal_statsmodels(diabetes, stream, tmp_path):
    folder, frame = diabetes
    data = folder / ("diabetes.parquet" if stream else "diabetes.csv")
    train(folder, "--data", str(data), *(["--stream"] if stream else []))
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(folder / "latest"), "--data", str(folder / "diabetes.csv"), "--interval", "0.9",
                 "--out", str(out)]) == 0  # fmt: skip
    ours = pd.read_csv(out)
    X = sm.add_constant(frame.drop(columns="target"))
    frame_sm = sm.OLS(frame["target"], X).fit().get_prediction(X).summary_frame(alpha=0.1)
    for column in ("mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        np.testing.assert_allclose(ours[column], frame_sm[column], rtol=1e-8)
    np.testing.assert_allclose(ours["prediction"], frame_sm["mean"], rtol=1e-8)


def test_normal_equations_are_the_books_formula(diabetes, capsys):
    folder, frame = diabetes
    summary = train(folder, "--data", str(folder / "diabetes.csv"), "--solver", "normal-equations")
    assert "the normal equations (AᵀA)⁻¹Aᵀy" in capsys.readouterr().out and summary["solver"] == "normal-equations"
    reference = sm.OLS(frame["target"], sm.add_constant(frame.drop(columns="target"))).fit()
    assert summary["coefficients"]["bmi"] == pytest.approx(reference.params["bmi"], rel=1e-6)  # κ² ε ≈ 1e-8 here


def one_line_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and "Traceback" not in err
    return err


def test_bad_tables_give_one_line_or_a_result_that_says_why(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30), "y": rng.normal(size=30)})
    closed = ["train", "linreg", "--solver", "closed-form", "--target", "y", "--test-fraction", "0"]

    huge = base.assign(b=base["b"] * 1e300)
    huge.to_csv(tmp_path / "huge.csv", index=False)
    err = one_line_error(capsys, *closed, "--data", str(tmp_path / "huge.csv"), "--out", str(tmp_path / "h"))
    assert "column 'b' holds values of about" in err and not (tmp_path / "h").exists()

    leverage = base.assign(b=np.eye(30)[3])
    leverage.to_csv(tmp_path / "leverage.csv", index=False)
    err = one_line_error(capsys, *closed, "--data", str(tmp_path / "leverage.csv"), "--cov", "HC3", "--out",
                         str(tmp_path / "l"))  # fmt: skip
    assert "training row 4 has leverage 1" in err and not (tmp_path / "l").exists()

    constant = base.assign(b=2.5)
    constant.to_csv(tmp_path / "constant.csv", index=False)
    assert main([*closed, "--data", str(tmp_path / "constant.csv"), "--out", str(tmp_path / "c")]) == 0
    assert "'b' is a linear combination" in capsys.readouterr().err

    base.head(2).to_csv(tmp_path / "short.csv", index=False)  # 2 rows, 3 coefficients
    assert main([*closed, "--data", str(tmp_path / "short.csv"), "--out", str(tmp_path / "s")]) == 0
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["standard_errors"]["a"] is None and any("no residual degrees" in w for w in summary["warnings"])
    assert "NaN" not in (tmp_path / "s" / "summary.json").read_text()


def test_least_squares_flags_are_refused_for_sgd_and_intervals_for_sgd_runs(tmp_path, capsys):
    err = one_line_error(capsys, "train", "linreg", "--no-intercept")
    assert "--no-intercept applies to the least-squares solvers" in err
    one_line_error(capsys, "train", "linreg", "--cov", "HC1")
    base = pd.DataFrame({"a": np.arange(20.0), "y": 2 * np.arange(20.0) + 1})
    base.to_csv(tmp_path / "t.csv", index=False)
    assert main(["train", "linreg", "--data", str(tmp_path / "t.csv"), "--target", "y", "--standardize",
                 "--out", str(tmp_path / "sgd")]) == 0  # fmt: skip
    err = one_line_error(capsys, "predict", str(tmp_path / "sgd"), "--data", str(tmp_path / "t.csv"), "--interval",
                         "0.95", "--out", str(tmp_path / "p.csv"))  # fmt: skip
    assert "prediction intervals need a least-squares run" in err and not (tmp_path / "p.csv").exists()
