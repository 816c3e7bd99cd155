"""The one validation boundary for data and the machine: checks on whole tensors, memory and size limits, and the
reading of untrusted files (`read_file_bytes`: regular files of a bounded size).

A config's values are checked by its field table (`pipeline.config`); what only the data can tell is checked here,
once per fit on whole tensors (once per chunk of a streamed table), never per batch. The chapter's math trusts its
arguments, as the book's does. A size is checked against the machine's memory before it is allocated: one line, not
a swapping machine. Messages name fields by their Python names (the command line writes each as its flag,
`errors.flag_message`); torch is imported where a check needs it, so that `linear-nets --help` starts without it.
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from linear_nets.errors import ConfigError, DataError

if TYPE_CHECKING:
    from torch import Tensor

MAGNITUDE_LIMIT = 1e150
"""Least squares refuses a column beyond it (or nonzero but below its inverse): its squares leave float64's range."""
NO_ROWS = "no rows to fit: least squares needs at least one row"

# --- untrusted files: what is read, and how much ----------------------------------------------------------------

MAX_JSON_BYTES = 256 << 20  # a table of 1,000 long category names made an 18 MB config.json; written files are checked
"""Largest JSON file of a run read (a checkpoint's history grows by about 150 bytes an epoch)."""
MAX_METRICS_BYTES = 64 << 20
"""Largest metrics.jsonl read (about 150 bytes an epoch)."""
MAX_TENSOR_FILE_BYTES = 2 << 30
"""Largest safetensors file read: far above any model here (Fashion-MNIST's is 31 KB, with --resize 280 3 MB)."""
MAX_IMAGE_BYTES = 64 << 20
"""Largest image file `predict` reads."""
MAX_IMAGE_PIXELS = 4096 * 4096  # about 200 MB while it is converted
"""Most pixels an image to predict may declare (read from its header before it is decoded)."""
MAX_DENSE_BYTES = 2 << 30
"""Largest dense copy the scikit-learn estimators make of a sparse input."""
MAX_DOWNLOAD_BYTES = 64 << 20  # the largest file is 26 MB gzipped; more means a wrong or hostile server
"""Most bytes one Fashion-MNIST download may send."""


def read_file_bytes(path: str | os.PathLike, what: str, limit: int) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes (checked before reading); a `DataError` naming
    `what` and `path` when it is missing, unreadable, not a regular file (a FIFO, a device), or larger.

    Example:
        >>> read_file_bytes("/dev/zero", "image", 100)
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: image /dev/zero is not a regular file
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # non-blocking: opening a FIFO must not wait for a writer
        info = os.fstat(fd)  # of what was opened: a file swapped after a check of its name cannot slip through
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise DataError(f"{what} {path} is not a regular file")
        with open(fd, "rb") as f:
            if info.st_size > limit:
                raise DataError(f"{what} {path} is {info.st_size} bytes, more than the {limit} this package reads")
            data = f.read(limit + 1)  # never more than the limit, even from a file that grows while it is read
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except OSError as exc:
        raise DataError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise DataError(f"{what} {path} grew past {limit} bytes while it was read")
    return data


# --- the machine's memory ------------------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes this process can still allocate: Linux's MemAvailable, lowered by a cgroup (container) limit when there
    is one; otherwise the free physical memory; None where the system does not say."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            available = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), None)
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit_file, usage_file in (("memory.max", "memory.current"),  # cgroup v2, then v1
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):  # fmt: skip
        try:
            with open(f"/sys/fs/cgroup/{limit_file}") as f, open(f"/sys/fs/cgroup/{usage_file}") as g:
                limit, usage = f.read().strip(), g.read().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit():  # "max" (v2) means no limit; v1 says so with a huge number
            available = min(available, max(0, int(limit) - int(usage)))
        break
    return available


def _format_bytes(n: float) -> str:
    """A size in decimal units, one decimal: 80.0 GB, 3.9 GB, 28.8 MB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def check_memory(what: str, need: int) -> None:
    """Raise `ConfigError` ("--samples 10000000000 of 2 features needs 120.0 GB, this machine has 3.9 GB available")
    when `need` bytes are more than this machine has available."""
    available = available_memory()
    if available is not None and need > available:
        raise ConfigError(f"{what} needs {_format_bytes(need)}, this machine has {_format_bytes(available)} available")


# --- choices a library caller names -----------------------------------------------------------------------------


def one_of(field: str, value: Any, choices: Collection[str]) -> Any:
    """`value` if it is one of `choices`, else a `ConfigError` naming `field` (for callers the config does not
    validate: the command line's choices are checked by the field table first).

    Example:
        >>> one_of("loss", "l1", ("squared", "l1"))
        'l1'
        >>> one_of("loss", "hinge", ("squared", "l1"))
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: loss must be one of squared, l1, got 'hinge'
    """
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{field} must be one of {', '.join(choices)}, got {value!r}", field)
    return value


# --- a classifier's data --------------------------------------------------------------------------------------------


def check_labels(y: Tensor, num_classes: int, *, n: int | None = None) -> None:
    """Raise `DataError` unless `y` is a 1-D integer tensor (of length `n`, if given) with values in 0..num_classes-1.
    The fit asks once, on whole tensors: per batch, reading the extreme labels would sync a GPU every batch.

    Example:
        >>> import torch
        >>> check_labels(torch.tensor([0, 9]), 10)
        >>> check_labels(torch.tensor([0, 10]), 10)
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: labels must lie in 0..9 (10 classes), got values from 0 to 10
    """
    import torch

    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise DataError(f"labels must be a 1-D integer tensor, got dtype {y.dtype} and shape {list(y.shape)}")
    if n is not None and y.shape[0] != n:
        raise DataError(f"got {y.shape[0]} labels for {n} examples: they must agree")
    if y.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(y))
    if low < 0 or high >= num_classes:
        raise DataError(
            f"labels must lie in 0..{num_classes - 1} ({num_classes} classes), got values from {low} to {high}"
        )


def check_inputs(X: Tensor, num_inputs: int) -> None:
    """Raise `DataError` unless `X` is a batch `[n, ...]` of floating-point examples with `num_inputs` values each.

    Images `[n, 1, 28, 28]` and flat rows `[n, 784]` both pass for `num_inputs=784`. Reads only the shape and dtype
    (no device sync), so a model may ask it at its door.

    Example:
        >>> import torch
        >>> check_inputs(torch.zeros(2, 1, 28, 28), 784)
        >>> check_inputs(torch.zeros(2, 1, 32, 32), 784)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: inputs of shape [2, 1, 32, 32] have 1024 values per example but the model ...
    """
    if X.dim() < 2:
        raise DataError(f"inputs must be a batch [n, ...] of examples, got shape {list(X.shape)}")
    if not X.dtype.is_floating_point:
        raise DataError(f"inputs must be floating point (e.g. images / 255), got dtype {X.dtype}")
    per_example = math.prod(X.shape[1:])
    if per_example != num_inputs:
        raise DataError(
            f"inputs of shape {list(X.shape)} have {per_example} values per example but the model takes "
            f"{num_inputs}: build it with num_inputs={per_example} or resize the images to match"
        )


def check_split(train: Tensor, val: Tensor, val_fraction: float) -> None:
    """Raise `ConfigError` when a validation split (`regularization.train_val_split`) left either part empty.

    Example:
        >>> import torch
        >>> check_split(torch.arange(3), torch.arange(0), 0.1)
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: val_fraction 0.1 of 3 examples leaves an empty validation set: choose ...
    """
    if len(val) == 0 or len(train) == 0:
        raise ConfigError(f"val_fraction {val_fraction} of {len(train) + len(val)} examples leaves an empty "
                          f"{'validation' if len(val) == 0 else 'training'} set: choose a fraction nearer 0.5",
                          "val_fraction")  # fmt: skip


# --- minibatches --------------------------------------------------------------------------------------------------


def check_minibatches(X: Tensor, batch_size: int, sampling: str = "shuffle", resize: int | None = None) -> None:
    """Raise `ConfigError` (or `DataError`) when the rows of `X` cannot give the minibatches asked for: `resize`
    of inputs that are not images `[N, C, H, W]`, or a `sampling` whose batches need more rows than there are.

    Example:
        >>> import torch
        >>> check_minibatches(torch.zeros(3, 2), 5, "shuffle-fill")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: sampling shuffle-fill cannot fill a batch of 5 from 3 examples without ...
    """
    if resize is not None and X.dim() != 4:
        raise DataError(f"resize needs images of shape [N, C, H, W], got {list(X.shape)}", "resize")
    n = len(X)
    if batch_size > n and sampling == "shuffle-drop-last":
        raise ConfigError(f"sampling shuffle-drop-last with batch_size {batch_size} > {n} examples drops every "
                          "example: no batch at all; lower batch_size or use sampling shuffle", "sampling",
                          "batch_size")  # fmt: skip
    if batch_size > n and sampling == "shuffle-fill":
        raise ConfigError(f"sampling shuffle-fill cannot fill a batch of {batch_size} from {n} examples without "
                          "repeats: lower batch_size or use sampling with-replacement", "sampling",
                          "batch_size")  # fmt: skip


# --- a regressor's data -------------------------------------------------------------------------------------------


def check_regression_data(features: Tensor, labels: Tensor) -> None:
    """Raise `DataError` unless `features` is a non-empty matrix `[n, d]`, `labels` has n values, and neither holds
    NaN or ±inf.

    Example:
        >>> import torch
        >>> check_regression_data(torch.zeros(3, 2), torch.tensor([0.0, 1.0, float("nan")]))
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: labels contain NaN or inf: clean the data first
    """
    if features.dim() != 2 or features.shape[0] == 0:
        raise DataError(f"features must be a non-empty matrix [n, d], got shape {list(features.shape)}")
    if labels.numel() != features.shape[0]:
        raise DataError(
            f"labels have {labels.numel()} values but features have {features.shape[0]} rows: they must agree"
        )
    for name, t in (("features", features), ("labels", labels)):
        if not t.isfinite().all():
            raise DataError(f"{name} contain NaN or inf: clean the data first")


def check_design(Zt: Any, names: Sequence[str], largest: Tensor | None = None) -> Tensor:
    """Check one chunk Zᵀ = [X, 1, y]ᵀ of least squares (`closed_form.Chunks`: a row per feature, named by `names`,
    the ones of an intercept, then y) and return each row's largest absolute value so far: the elementwise max with
    `largest`, what this returned for the chunks before.

    Raises `DataError` when the chunk holds NaN or ±inf, or a value beyond `MAGNITUDE_LIMIT`; `check_design_end`
    checks what only every chunk together can tell.

    Example:
        >>> import numpy as np
        >>> check_design(np.array([[1.0, -3.0], [1.0, 1.0], [2.0, 5.0]]), ["x"]).tolist()
        [3.0, 1.0, 5.0]
        >>> check_design(np.array([[1.0, 1e200], [2.0, 5.0]]), ["x"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: column 'x' holds values of about 1e+200: their squares leave float64's range ...
    """
    import torch

    Z = torch.as_tensor(Zt)
    size = Z.amax(dim=1).maximum(-Z.amin(dim=1))  # NaN where a row holds one; 4% of folding the chunk in
    if not size.isfinite().all():
        raise DataError(f"{'y' if size[:-1].isfinite().all() else 'X'} contains NaN or inf: clean the data first")
    _check_magnitudes(size, names, size > MAGNITUDE_LIMIT)
    return size if largest is None else size.maximum(largest)


def check_design_end(largest: Tensor | None, names: Sequence[str], no_rows: str = NO_ROWS,
                     gather: Callable[[Any], list[Any]] | None = None) -> None:  # fmt: skip
    """After the last chunk of least squares' first pass, with `largest` from `check_design` (None: no chunk): raise
    `DataError` saying `no_rows` when no process had a row, or when a column's values are all so small, yet not zero,
    that their squares underflow. `gather` collects every process's `largest` in a data-parallel fit.

    Example:
        >>> import torch
        >>> check_design_end(None, ["x"], gather=lambda largest: [largest, torch.tensor([2.0, 1.0, 3.0])])
        >>> check_design_end(None, ["x"])
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: no rows to fit: least squares needs at least one row
    """
    sizes = [size for size in (gather(largest) if gather is not None else [largest]) if size is not None]
    if not sizes:
        raise DataError(no_rows)
    size = functools.reduce(lambda a, b: a.maximum(b), sizes)
    _check_magnitudes(size, names, (size > 0) & (size < 1 / MAGNITUDE_LIMIT))


def _check_magnitudes(size: Tensor, names: Sequence[str], refused: Tensor) -> None:
    """Name the first refused row of Zᵀ: a feature or the target (the intercept's ones are never refused)."""
    if refused.any():
        j = int(refused.nonzero()[0])
        what = "the target" if j == len(size) - 1 else f"column {names[j]!r}"
        raise DataError(f"{what} holds values of about {float(size[j]):.0e}: their squares leave float64's range "
                        "(1e-308 to 1e308), so the standard errors cannot be computed; rescale it (e.g. divide by a "
                        "power of ten) and fit again")  # fmt: skip


def check_normal_equations(R: Any) -> Any:
    """`R`, the Cholesky factor of the normal equations (`closed_form.Factor`), or `DataError` when there is none
    (None): AᵀA is not positive definite in float64, so the book's formula has no answer.

    Example:
        >>> check_normal_equations(None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: AᵀA is not positive definite in float64 (collinear or constant columns, or ...
    """
    if R is None:
        raise DataError("AᵀA is not positive definite in float64 (collinear or constant columns, or too few rows): "
                        "the normal equations have no unique answer; use the QR solver (solver closed-form)",
                        "solver")  # fmt: skip
    return R


def check_covariance(cov_type: str, unique: bool, leverage: float = 0.0, row: int = 0) -> None:
    """Raise `DataError` when a robust covariance (`cov_type` HC0-HC3) cannot be computed: the least-squares solution
    is not `unique`, or HC2/HC3 divide by 1 − h for a training `row` of leverage h = 1.

    Example:
        >>> check_covariance("HC3", True, leverage=1.0, row=4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: training row 4 has leverage 1 (h = 1): HC3 divides by 1 − h; use cov HC0 or ...
    """
    if cov_type != "nonrobust" and not unique:
        raise DataError(f"the {cov_type} covariance needs a unique least-squares solution, but the design is rank "
                        "deficient: remove the dependent columns the warning names")  # fmt: skip
    if cov_type in ("HC2", "HC3") and leverage > 1 - 1e-10:
        raise DataError(f"training row {row} has leverage 1 (h = {leverage:.12g}): {cov_type} divides by 1 − h; use "
                        "cov HC0 or HC1, or drop that row (it alone fixes a coefficient, e.g. the only row of a "
                        "category)", "cov")  # fmt: skip


def check_output(path: Any, suffixes: Collection[str]) -> None:
    """Raise `ConfigError`, before any work is done, when `path` cannot be written: a suffix other than `suffixes`
    (no suffix stands for all of them), or a directory that is missing or not writable.

    Example:
        >>> check_output("curves.pdf", (".png", ".svg"))
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: cannot save a figure as curves.pdf: use a .png or .svg file name (or no \
extension for both)
    """
    from pathlib import Path

    path = Path(path)
    if path.suffix and path.suffix.lower() not in suffixes:
        raise ConfigError(f"cannot save a figure as {path}: use a {' or '.join(suffixes)} file name (or no extension "
                          "for both)")  # fmt: skip
    directory = path.parent
    if not directory.is_dir():
        raise ConfigError(f"cannot save {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot save {path}: directory {directory} is not writable")
