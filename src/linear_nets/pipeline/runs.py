"""Run directories and checkpoints: results that outlive the terminal.

A run directory holds `config.json`, `metrics.csv` + `metrics.jsonl` (a row per epoch), figures,
`model.safetensors` + `model.json` and `summary.json`; while training, `checkpoint.json` points at the latest
`checkpoint-<epoch>.safetensors`. Every file is written atomically.

Loading never executes code from a file: tensors come from safetensors, everything else from JSON. Each
safetensors file is listed in its JSON sidecar with its SHA-256, so a truncated or tampered file is refused
with a `DataError` instead of being loaded.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from linear_nets import __version__
from linear_nets.atomic import atomic_write_bytes, atomic_write_text, current_umask, stale_temporaries
from linear_nets.errors import ConfigError, DataError, LinearNetsError

FORMAT = "linear-nets/1"


def new_run_dir(
    model: str, out: str | Path | None = None, root: str | Path = "runs", files: Mapping[str, str] | None = None
) -> Path:
    """Create a fresh run directory holding `files` (name -> text) and return it.

    The directory is built under a temporary name beside its final one, then renamed into place. The rename is
    atomic and fails when the final name holds anything, so two runs started at once never share a directory: the
    later rename finds the earlier run's files (hence give at least one file; `Run.create` gives config.json).

    Args:
        model: model name, used in the default name `<root>/<model>-<YYYYmmdd-HHMMSS>`, or `...-2`, `-3`, ... when
            another run took that name first.
        out: an explicit directory; it must not exist yet or be empty (then it is replaced), so an earlier run is
            never overwritten. A symbolic link stands for the directory it points to.
        root: parent of the default name.
        files: what the directory holds from the start.

    Raises:
        ConfigError: `out` holds files already, or the directory cannot be created.

    Example:
        >>> import tempfile
        >>> new_run_dir("softmax", out=tempfile.mkdtemp() + "/run", files={"config.json": "{}"}).name
        'run'
    """
    files = dict(files or {})
    if out is not None:
        out = Path(out)
        if not _move_into_place(out.resolve() if out.is_symlink() else out, files, f"--out {out}"):
            raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new one")
        return out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = Path(root) / (f"{model}-{stamp}" if n == 1 else f"{model}-{stamp}-{n}")
        if _move_into_place(path, files, f"run directory {path}"):
            return path
    raise ConfigError(f"{root}: more than 999 runs of {model} started at {stamp}; pass --out")


def _move_into_place(final: Path, files: Mapping[str, str], label: str) -> bool:
    """Build a directory holding `files` beside `final` and rename it to `final`; False when `final` is taken."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    except OSError as exc:
        raise ConfigError(f"{label}: cannot create the run directory ({exc.strerror or exc})") from None
    try:
        os.chmod(building, 0o777 & ~current_umask())  # mkdtemp makes 0700; a run directory follows the umask
        for name, text in files.items():
            atomic_write_text(building / name, text)
        os.rename(building, final)  # replaces an empty directory; refuses anything else
        return True
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return False
        raise ConfigError(f"{label}: cannot create the run directory ({exc.strerror or exc})") from None


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_text(path, _json_text(obj))


def read_json(path: Path, what: str = "file") -> Any:
    """Read JSON, turning a missing or corrupt file into a `DataError` that names it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{what} {path} is corrupt: {exc}") from None


def write_metrics(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write the per-epoch rows as `metrics.csv` and `metrics.jsonl` (whole files, atomically)."""
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(dict(r)) + "\n" for r in rows))


def save_tensors(path: Path, tensors: Mapping[str, Tensor], meta: Mapping[str, Any] | None = None) -> None:
    """Save tensors to `path` (safetensors) and a sidecar `path.with_suffix('.json')` describing them.

    The sidecar holds each tensor's shape and dtype, the file's SHA-256 and `meta` (JSON-able), and is written
    after the tensors, so a sidecar always describes a complete file.
    """
    data = safetensors.torch.save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(path, data)
    write_json(
        path.with_suffix(".json"),
        {
            "format": FORMAT,
            "file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "tensors": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in tensors.items()
            },
            "meta": dict(meta or {}),
        },
    )


def load_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Load tensors saved by `save_tensors`, verified against the sidecar; return (tensors, meta).

    Raises:
        DataError: the file or sidecar is missing, truncated, tampered with (SHA-256 differs) or not ours.
    """
    sidecar = read_json(path.with_suffix(".json"), "tensor description")
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise DataError(f"{path.with_suffix('.json')} is not a linear-nets tensor description")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    if hashlib.sha256(data).hexdigest() != sidecar.get("sha256"):
        raise DataError(f"{path} is truncated or was modified (SHA-256 differs from {path.name}'s description)")
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own error type for every malformed file
        raise DataError(f"{path} is not a valid safetensors file: {exc}") from None
    return tensors, sidecar.get("meta", {})


def check_state(tensors: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: Path) -> None:
    """Refuse tensors whose names or shapes differ from the model's (a checkpoint of another model or size)."""
    if set(tensors) != set(expected):
        raise DataError(f"{source} holds tensors {sorted(tensors)}, but this model has {sorted(expected)}")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise DataError(
                f"{source}: tensor {name!r} has shape {list(tensor.shape)}, "
                f"but this model needs {list(expected[name].shape)}"
            )


def with_prefix(prefix: str, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Name each tensor `prefix.name`, so that several parts' tensors share one checkpoint file.

    Example:
        >>> with_prefix("model", {"W": torch.zeros(1)})
        {'model.W': tensor([0.])}
    """
    return {f"{prefix}.{name}": t for name, t in tensors.items()}


def under_prefix(prefix: str, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of `with_prefix`: the tensors named `prefix.*`, with `prefix.` removed.

    Example:
        >>> under_prefix("model", {"model.W": torch.zeros(1), "rng.torch": torch.zeros(1)})
        {'W': tensor([0.])}
    """
    start = f"{prefix}."
    return {name.removeprefix(start): t for name, t in tensors.items() if name.startswith(start)}


def rng_states(*generators: torch.Generator) -> dict[str, Tensor]:
    """The global torch RNG state and each generator's state, as tensors for a checkpoint."""
    states = {"rng.torch": torch.get_rng_state()}
    states.update({f"rng.generator.{i}": g.get_state() for i, g in enumerate(generators)})
    return states


def restore_rng_states(states: Mapping[str, Tensor], *generators: torch.Generator) -> None:
    """Inverse of `rng_states`."""
    torch.set_rng_state(states["rng.torch"])
    for i, g in enumerate(generators):
        g.set_state(states[f"rng.generator.{i}"])


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split `optimizer.state_dict()` into tensors (for safetensors) and the JSON-able rest.

    A list of tensors (L-BFGS keeps its recent directions and steps so; unused slots are None) becomes numbered
    tensors `key.0`, `key.1`, ..., and its length is recorded with the rest.

    Example:
        >>> p = torch.nn.Parameter(torch.zeros(2))
        >>> tensors, rest = optimizer_state(torch.optim.SGD([p], lr=0.1))
        >>> tensors, rest["param_groups"][0]["lr"]
        ({}, 0.1)
    """
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{param_id}.{key}"] = value
            elif isinstance(value, list) and all(v is None or isinstance(v, Tensor) for v in value):
                tensors |= {f"optimizer.{param_id}.{key}.{i}": v for i, v in enumerate(value) if v is not None}
                scalars.setdefault(str(param_id), {})[key] = {"tensor_list": len(value)}
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], rest: Mapping) -> None:
    """Inverse of `optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    lists = {(int(pid), key): n["tensor_list"] for pid, entries in rest["scalars"].items()
             for key, n in entries.items() if isinstance(n, dict) and "tensor_list" in n}  # fmt: skip
    for (param_id, key), n in lists.items():
        state.setdefault(param_id, {})[key] = [tensors.get(f"optimizer.{param_id}.{key}.{i}") for i in range(n)]
    for name, value in tensors.items():
        _, param_id, key = name.split(".", 2)
        if (int(param_id), key.rsplit(".", 1)[0]) not in lists:
            state.setdefault(int(param_id), {})[key] = value
    for param_id, entries in rest["scalars"].items():
        plain = {k: v for k, v in entries.items() if (int(param_id), k) not in lists}
        state.setdefault(int(param_id), {}).update(plain)
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


class Run:
    """A run directory as `linear-nets train` writes it, and as `evaluate`, `predict` and `--resume` read it.

    Args:
        path: the directory.
        config: what `config.json` holds: at least `model` and `args` (the command's arguments).

    Example:
        >>> import tempfile
        >>> run = Run.create("softmax", {"args": {"lr": 0.1}}, out=tempfile.mkdtemp() + "/run")
        >>> Run.open(run.path).config["args"]
        {'lr': 0.1}
    """

    RUN_FORMAT = "linear-nets/run/1"

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path, self.config = Path(path), config

    @property
    def model(self) -> str:
        """The model's name, e.g. "softmax" or "linreg"."""
        return self.config["model"]

    @property
    def finished(self) -> bool:
        """Whether training ended and its results were written (`summary.json` is the last file a run writes)."""
        return (self.path / "summary.json").is_file()

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete what writes killed midway left here (`atomic.stale_temporaries`); return it. Only for the run's
        one writer: the process resuming it."""
        stale = stale_temporaries(self.path)
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    @classmethod
    def create(cls, model: str, config: Mapping[str, Any], out: str | Path | None = None) -> Run:
        """Make a new run directory holding its `config.json` (atomically: see `new_run_dir`)."""
        full = {"format": cls.RUN_FORMAT, "model": model, **config}
        return cls(new_run_dir(model, out, files={"config.json": _json_text(full)}), full)

    @classmethod
    def open(cls, path: str | Path, model: str | None = None) -> Run:
        """Open an existing run directory, refusing one that is missing, not ours, or of another model."""
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"run directory {path} does not exist")
        config = read_json(path / "config.json", "run configuration")
        if not isinstance(config, dict) or config.get("format") != cls.RUN_FORMAT:
            raise DataError(f"{path} is not a linear-nets run directory (its config.json is not ours)")
        if model is not None and config.get("model") != model:
            raise DataError(f"{path} is a run of model {config.get('model')!r}, not {model!r}")
        return cls(path, config)

    @contextlib.contextmanager
    def removed_on_error(self) -> Iterator[Run]:
        """Remove this run directory if the block raises a `LinearNetsError` (a diverged run keeps no results)."""
        try:
            yield self
        except LinearNetsError:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the run directory (the one a symbolic link `--out` points to, not the link)."""
        shutil.rmtree(self.path.resolve(), ignore_errors=True)

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite `metrics.csv` and `metrics.jsonl` with every epoch so far."""
        write_metrics(self.path, rows)

    def save_checkpoint(self, epoch: int, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> Path:
        """Write `checkpoint-<epoch>.safetensors` (+ its JSON) and then remove older checkpoints.

        A new name per epoch means a kill at any moment leaves at least one complete, verifiable checkpoint.
        """
        path = self.path / f"checkpoint-{epoch}.safetensors"
        save_tensors(path, tensors, {"epoch": epoch, **state})
        for old in self._checkpoints():
            if old != path:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)
        return path

    def has_checkpoint(self) -> bool:
        """Whether a complete checkpoint is there to resume from."""
        return bool(self._complete_checkpoints())

    def load_checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The newest complete checkpoint: (tensors, state with `epoch`)."""
        complete = self._complete_checkpoints()
        if not complete:
            raise DataError(f"{self.path} holds no checkpoint to resume from (it was not trained with checkpoints)")
        return load_tensors(complete[-1])

    def _complete_checkpoints(self) -> list[Path]:  # the description is written after the tensors
        return [p for p in self._checkpoints() if p.with_suffix(".json").exists()]

    def _checkpoints(self) -> list[Path]:
        found = []
        for p in self.path.glob("checkpoint-*.safetensors"):
            epoch = p.stem.removeprefix("checkpoint-")
            if epoch.isdigit():
                found.append((int(epoch), p))
        return [p for _, p in sorted(found)]

    def save_model(self, tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> None:
        """Write the trained model as `model.safetensors` + `model.json`."""
        save_tensors(self.path / "model.safetensors", tensors, meta)

    def load_model(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The trained model's tensors and description (verified)."""
        if not (self.path / "model.safetensors").exists():
            raise DataError(f"{self.path} has no model.safetensors: the run did not finish")
        return load_tensors(self.path / "model.safetensors")

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """Write `summary.json` (final metrics, wall time)."""
        write_json(self.path / "summary.json", dict(summary))


def run_config(
    config: Mapping[str, Any], data: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What every run's config.json holds besides the model's name: the config's fields, the data's identity, the
    run options (where the data came from, checkpoints), and the versions that produced it."""
    return {
        "config": dict(config),
        "data": dict(data or {}),
        "options": dict(options or {}),
        "versions": {"linear_nets": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def saved_config(run: Run, cls: type) -> Any:
    """The config a run was trained with (runs from before configs existed: the matching fields of their args).

    Raises `DataError` when config.json does not describe a valid config of `cls`.
    """
    from linear_nets.pipeline.config import field_names, from_dict

    values = run.config.get("config")
    if values is None:  # written by linear-nets 0.1 before one config: its argparse arguments
        args = run.config.get("args", {})
        values = {k: v for k, v in args.items() if k in field_names(cls) and v is not None}
        if "huber_sigma" in args and args["huber_sigma"] is not None:
            values["huber_delta"] = args["huber_sigma"]
    try:
        return from_dict(cls, values)
    except (ConfigError, TypeError) as exc:
        raise DataError(f"{run.path}/config.json does not describe a {cls.__name__}: {exc}") from None
