"""What a statistician reads after a least-squares fit: statsmodels' OLS summary, from the factor R of the design.

With n rows, p columns of A (rank p), θ the estimate and SSR = ‖y − Aθ‖² (`linear_nets.closed_form`):

- scale σ̂² = SSR / (n − p); the residual standard deviation σ̂;
- covariance of θ: σ̂² (AᵀA)⁻¹ = σ̂² R₁₁⁻¹R₁₁⁻ᵀ ("nonrobust"), or White's sandwich (AᵀA)⁻¹ (Σ wᵢ aᵢaᵢᵀ) (AᵀA)⁻¹ with
  wᵢ = rᵢ² (HC0), n/(n − p) · rᵢ² (HC1), rᵢ²/(1 − hᵢ) (HC2), rᵢ²/(1 − hᵢ)² (HC3), hᵢ the row's leverage;
- standard errors √diag(cov); t = θ / se; two-sided p-values and 1 − α intervals from Student's t with n − p degrees
  of freedom, or from the normal distribution for a robust covariance (as statsmodels does by default);
- R² = 1 − SSR / TSS, TSS centred with an intercept and uncentred (Σy²) without one, as NIST and statsmodels report
  it; adjusted R² = 1 − (n − k) / (n − p) · (1 − R²), k = 1 with an intercept, else 0;
- F = (ESS / df_model) / σ̂² with df_model = p − k (or, robust, the Wald test that every coefficient but the intercept
  is zero, divided by df_model), its p-value from F(df_model, n − p);
- log-likelihood of the Gaussian model −n/2 · (log(2π SSR / n) + 1); AIC = −2ℓ + 2p, BIC = −2ℓ + p log n;
- condition number κ(A) = σ_max / σ_min, statsmodels' `condition_number`.

The p-values and quantiles come from scipy.stats. Every number is checked against statsmodels in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LARGE_CONDITION = 1000.0  # statsmodels' summary warns above this condition number


@dataclass
class OLSResult:
    """An ordinary-least-squares fit and its statistics, named as statsmodels' `RegressionResults` names them.

    `params` holds θ, one per column `names` (the features, then "intercept" when there is one; `w` and `b` split
    it), `cov_params` its covariance (`cov_type`). `df_model` is p − k, `df_resid` n − rank; `total_ss` is centred
    with an intercept; `scaled_condition_number` is κ of the columns scaled to unit norm. `refined` says whether a
    second pass refined θ; `warnings` are lines a reader must see beside the numbers (rank, condition number,
    undefined statistics).
    """

    names: list[str]
    params: np.ndarray
    cov_params: np.ndarray
    nobs: int
    df_model: int
    df_resid: int
    rank: int
    k_constant: int
    ssr: float
    total_ss: float
    condition_number: float
    scaled_condition_number: float
    cov_type: str = "nonrobust"
    alpha: float = 0.05
    refined: bool = False
    method: str = "qr"
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, names: list[str], solution: Any, nobs: int, total_ss: float, *, fit_intercept: bool,
              cov_type: str, alpha: float, meat: np.ndarray | None, method: str) -> OLSResult:  # fmt: skip
        """The result from a `closed_form.Solution` (and, for a robust covariance, the summed Σ wᵢ qᵢqᵢᵀ)."""
        k = 1 if fit_intercept else 0
        df_resid = nobs - solution.rank
        notes: list[str] = []
        if df_resid <= 0:
            notes.append(f"{nobs} rows for rank {solution.rank}: no residual degrees of freedom, so standard errors, "
                         "t, p-values, intervals and F are not defined (null in summary.json)")  # fmt: skip
        elif solution.ssr == 0:
            notes.append("the fit is exact (residual sum of squares 0): standard errors are 0, t and F infinite "
                         "(null in summary.json)")  # fmt: skip
        inverse = solution.inverse
        if meat is None:
            cov = (solution.ssr / df_resid if df_resid > 0 else math.nan) * (inverse @ inverse.T)
        else:
            cov = inverse @ meat @ inverse.T
            if cov_type == "HC1":
                cov = cov * nobs / df_resid
        if solution.dependent:
            notes.append(f"the design has rank {solution.rank} < {len(names)} columns: dependent "
                         f"{', '.join(names[j] for j in solution.dependent)}; the minimum-norm solution and the "
                         "pseudo-inverse's standard errors are reported")  # fmt: skip
        if solution.condition_number > LARGE_CONDITION:
            notes.append(f"the condition number is large, {solution.condition_number:.3g}: this might indicate "
                         "strong multicollinearity or other numerical problems (statsmodels' warning; scale the "
                         "columns to tell units from collinearity: scaled, it is "
                         f"{solution.scaled_condition_number:.3g})")  # fmt: skip
        return cls(list(names), solution.theta, cov, nobs, solution.rank - k, df_resid, solution.rank, k, solution.ssr,
                   total_ss, solution.condition_number, solution.scaled_condition_number, cov_type, alpha,
                   solution.refined, method, notes)  # fmt: skip

    # --- the coefficients ------------------------------------------------------------------------------------------

    @property
    def w(self) -> np.ndarray:
        return self.params[: len(self.params) - self.k_constant]

    @property
    def b(self) -> float:
        return float(self.params[-1]) if self.k_constant else 0.0

    @property
    def use_t(self) -> bool:
        return self.cov_type == "nonrobust"

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov_params), 0, None))

    @property
    def tvalues(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.params / self.bse

    @property
    def pvalues(self) -> np.ndarray:
        from scipy import stats

        t = np.abs(self.tvalues)
        return 2 * (stats.t.sf(t, self.df_resid) if self.use_t else stats.norm.sf(t))

    def conf_int(self) -> np.ndarray:
        """`[p, 2]`: θ ∓ q · se, q the 1 − α/2 quantile of Student's t with df_resid (or, robust, the normal)."""
        from scipy import stats

        q = stats.t.isf(self.alpha / 2, self.df_resid) if self.use_t else stats.norm.isf(self.alpha / 2)
        half = float(q) * self.bse
        return np.column_stack([self.params - half, self.params + half])

    # --- the model -------------------------------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return self.ssr / self.df_resid if self.df_resid > 0 else math.nan

    @property
    def resid_std(self) -> float:
        return math.sqrt(self.scale)

    @property
    def rsquared(self) -> float:
        return 1 - self.ssr / self.total_ss if self.total_ss > 0 else math.nan

    @property
    def rsquared_adj(self) -> float:
        if self.df_resid <= 0:
            return math.nan
        return 1 - (self.nobs - self.k_constant) / self.df_resid * (1 - self.rsquared)

    @property
    def fvalue(self) -> float:
        if self.df_model <= 0 or self.df_resid <= 0:
            return math.nan
        if self.cov_type == "nonrobust":
            explained = (self.total_ss - self.ssr) / self.df_model
            return explained / self.scale if self.scale > 0 else math.inf
        slopes = [j for j, name in enumerate(self.names) if not (self.k_constant and j == len(self.names) - 1)]
        theta, cov = self.params[slopes], self.cov_params[np.ix_(slopes, slopes)]
        try:
            return float(theta @ np.linalg.solve(cov, theta)) / len(slopes)
        except np.linalg.LinAlgError:  # a singular robust covariance (e.g. every residual 0)
            return math.nan

    @property
    def f_pvalue(self) -> float:
        from scipy import stats

        value = self.fvalue
        return float(stats.f.sf(value, self.df_model, self.df_resid)) if math.isfinite(value) else math.nan

    @property
    def llf(self) -> float:
        n = self.nobs
        return -n / 2 * (math.log(2 * math.pi * self.ssr / n) + 1) if self.ssr > 0 else math.inf

    @property
    def aic(self) -> float:
        return -2 * self.llf + 2 * (self.df_model + self.k_constant)

    @property
    def bic(self) -> float:
        return -2 * self.llf + math.log(self.nobs) * (self.df_model + self.k_constant)

    # --- reading it ------------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The summary.json keys: name -> value maps by column name, model statistics as numbers; a statistic that
        is not defined is null (and `warnings` says why)."""

        def number(v: Any) -> float | None:
            v = float(v)
            return v if math.isfinite(v) else None

        def by_name(values: Any) -> dict[str, float | None]:
            return {name: number(v) for name, v in zip(self.names, values, strict=True)}

        coefficients = by_name(self.params)
        intercept = coefficients.pop("intercept", 0.0) if self.k_constant else 0.0
        return {
            "coefficients": coefficients,
            "intercept": intercept,
            "standard_errors": by_name(self.bse),
            "t_values": by_name(self.tvalues),
            "p_values": by_name(self.pvalues),
            "conf_int": {name: [number(lo), number(hi)] for name, (lo, hi) in zip(self.names, self.conf_int(),
                                                                                 strict=True)},
            "conf_level": 1 - self.alpha,
            "residual_std": number(self.resid_std) if self.df_resid > 0 else None,
            "train_r2": number(self.rsquared),
            "adj_r2": number(self.rsquared_adj),
            "f_statistic": number(self.fvalue),
            "f_pvalue": number(self.f_pvalue),
            "log_likelihood": number(self.llf),
            "aic": number(self.aic),
            "bic": number(self.bic),
            "df_model": self.df_model,
            "df_resid": self.df_resid,
            "condition_number": number(self.condition_number),
            "cov_type": self.cov_type,
            "nobs": self.nobs,
            "rank": self.rank,
            "fit_intercept": bool(self.k_constant),
            "solver": "normal-equations" if self.method == "normal-equations" else "qr",
            "refined": self.refined,
            "warnings": list(self.warnings),
        }

    def summary(self, target: str = "y") -> str:
        """The coefficient table (coef, std err, t, P>|t|, the interval) and the model statistics under it, in the
        layout of statsmodels' `summary()`, with more digits (each one printed is checked against a reference).

        Example:
            >>> from linear_nets.closed_form import ols
            >>> result = ols(np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([2.1, 3.9, 6.2, 7.8]), ["x"])
            >>> print(result.summary())  # doctest: +ELLIPSIS
            OLS of y (least squares, QR, refined; covariance nonrobust)
            ...
            intercept               0.15      0.247992    0.604858      0.6068     -0.917023       1.21702
            x                       1.94     0.0905539     21.4237    0.002172       1.55038       2.32962
            ...
            No. observations:                           4  R²:                                 0.995661376
            ...
        """
        stat = "t" if self.use_t else "z"
        low, high = f"[{self.alpha / 2:.3g}", f"{1 - self.alpha / 2:.3g}]"
        width = max(12, *(len(n) for n in self.names))
        order = ([len(self.names) - 1] if self.k_constant else []) + list(range(len(self.names) - self.k_constant))
        method = "QR" + (", refined" if self.refined else "") if self.method == "qr" else "normal equations"
        lines = [
            f"OLS of {target} (least squares, {method}; covariance {self.cov_type})",
            "=" * (width + 82),
            f"{'':<{width}}  {'coef':>14}  {'std err':>12}  {stat:>10}  {f'P>|{stat}|':>10}  {low:>12}  {high:>12}",
            "-" * (width + 82),
        ]
        intervals = self.conf_int()
        for j in order:
            values = (self.params[j], self.bse[j], self.tvalues[j], self.pvalues[j], *intervals[j])
            lines.append(f"{self.names[j]:<{width}}  {values[0]:>14.9g}  {values[1]:>12.6g}  {values[2]:>10.6g}  "
                         f"{_p(values[3]):>10}  {values[4]:>12.6g}  {values[5]:>12.6g}")  # fmt: skip
        lines.append("=" * (width + 82))
        r2_kind = "" if self.k_constant else " (uncentred)"
        pairs = [
            ("No. observations", f"{self.nobs}", f"R²{r2_kind}", f"{self.rsquared:.9g}"),
            ("Df residuals", f"{self.df_resid}", f"Adj. R²{r2_kind}", f"{self.rsquared_adj:.9g}"),
            ("Df model", f"{self.df_model}", "F-statistic", f"{self.fvalue:.6g}"),
            ("Residual std", f"{self.resid_std:.9g}", "Prob (F-statistic)", _p(self.f_pvalue)),
            ("Log-likelihood", f"{self.llf:.9g}", "AIC", f"{self.aic:.9g}"),
            ("Condition no.", f"{self.condition_number:.4g}", "BIC", f"{self.bic:.9g}"),
        ]
        half = (width + 82) // 2
        for a, b, c, d in pairs:
            lines.append(f"{a + ':':<20}{b:>{half - 22}}  {c + ':':<22}{d:>{width + 82 - half - 22}}")
        lines.append("=" * (width + 82))
        lines += [f"Note: {note}" for note in self.warnings]
        return "\n".join(lines)


def _p(value: float) -> str:
    """A p-value as statsmodels prints them, with more digits: small ones in scientific notation."""
    if not math.isfinite(value):
        return "nan"
    if value < 1e-300:  # below what float64 resolves: 0 would claim more than is known
        return "<1e-300"
    return f"{value:.4g}" if value >= 1e-4 else f"{value:.3e}"
