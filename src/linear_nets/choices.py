"""The named choices the chapter's code and the configs share, in one torch-free place.

The core (`optim`, `data.batches`, `losses`) checks a name against these tuples; `pipeline.config` offers them as
the values of its fields (`--impl`, `--optimizer`, ...). Importing this module costs nothing, so `linear-nets --help`
stays fast.

Example:
    >>> SAMPLING[0], OPTIMIZERS[-1]
    ('shuffle', 'lbfgs')
"""

from __future__ import annotations

IMPLS = ("scratch", "manual", "concise")
"""The three implementations of each model: autograd, hand-derived gradients, torch.nn."""
OPTIMIZERS = ("sgd", "momentum", "adam", "lbfgs")
"""`optim.make_optimizer`'s optimisers; the book's is sgd."""
SCHEDULES = ("constant", "step", "cosine")
"""`optim.lr_at`'s learning-rate schedules."""
LOSSES = ("squared", "l1", "huber")
"""`losses.get_loss`'s regression losses."""
SOLVERS = ("sgd", "closed-form", "normal-equations")
"""How linear regression is fitted: minibatch SGD, least squares by QR, or the book's (AᵀA)⁻¹Aᵀy."""
LEAST_SQUARES = ("closed-form", "normal-equations")
"""The solvers that compute the least-squares solution directly."""
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")
"""The covariances of the least-squares coefficients (statsmodels' `cov_type` names)."""
SAMPLING = ("shuffle", "shuffle-drop-last", "shuffle-fill", "with-replacement")
"""How a shuffled epoch is cut into minibatches (`data.batches`); shuffle is the book's."""
DEVICES = ("cpu", "cuda", "auto")
"""Where to compute."""
