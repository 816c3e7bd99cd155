"""`from linear_nets.sklearn import SoftmaxClassifier, LinearRegressor`: the scikit-learn estimators, which live
beside the pipeline they wrap (`linear_nets.pipeline.sklearn`). Needs scikit-learn (`pip install
'linear-nets[sklearn]'`)."""

from linear_nets.pipeline.sklearn import LinearRegressor, SoftmaxClassifier, expected_failed_checks

__all__ = ["LinearRegressor", "SoftmaxClassifier", "expected_failed_checks"]
