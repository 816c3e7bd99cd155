"""linear-nets: linear regression and softmax regression as chapter 3 of Dive into Deep Learning teaches them.

Subpackages keep one concept each: `data` (IDX files, Fashion-MNIST, synthetic data, minibatches), `scratch`
(the math with autograd), `manual` (hand-derived gradients), `concise` (torch.nn), and the shared `losses`,
`training`, `plotting` and `cli` modules.
"""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"


def load(run_dir: str | os.PathLike) -> Any:
    """The fitted model of a run directory with its training schema (`linear_nets.pipeline.saved.load`): `predict`,
    `predict_proba` (softmax) and `coefficients`. Imported on first use, so `import linear_nets` stays light."""
    from linear_nets.pipeline.saved import load as _load

    return _load(run_dir)
