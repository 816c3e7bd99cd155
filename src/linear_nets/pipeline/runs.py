"""Run directories (`config.json`, metrics, figures, the model, `summary.json`, checkpoints), written atomically; every
file read is untrusted: sizes bounded (`checks`), tensors checked (`load_tensors`, `check_state`), nothing executed.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import hashlib
import io
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import safetensors.torch
import torch
from torch import Tensor

from linear_nets import __version__, checks
from linear_nets.atomic import atomic_write_bytes, atomic_write_text, current_umask
from linear_nets.errors import ConfigError, DataError, LinearNetsError, WriteError
from linear_nets.pipeline.config import LinregConfig, Param, SoftmaxConfig, SyntheticData, from_dict

FORMAT = "linear-nets/1"

DTYPES = {"float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool"}
"""The dtypes a tensor description may name (what `str(tensor.dtype)` gives, without `torch.`)."""


def new_run_dir(
    model: str, out: str | Path | None = None, root: str | Path = "runs", files: Mapping[str, str] | None = None
) -> Path:
    """Create a fresh run directory holding `files` (name -> text), built beside its name and renamed into place (so
    two runs never share one), and return it: `<root>/<model>-<YYYYmmdd-HHMMSS>` (`-2`, ... when taken) or `out`,
    which must not exist or be empty: `ConfigError` otherwise, or when it cannot be created.

    Example:
        >>> import tempfile
        >>> new_run_dir("softmax", out=tempfile.mkdtemp() + "/run", files={"config.json": "{}"}).name
        'run'
    """
    files = dict(files or {})
    if out is not None:
        out = Path(out)
        target = out.resolve() if out.is_symlink() else out
        if _abandoned(target):  # a run killed before its first epoch ended: nothing to keep
            shutil.rmtree(target, ignore_errors=True)
        if not _move_into_place(target, files, f"--out {out}"):
            raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new one")
        return out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = Path(root) / (f"{model}-{stamp}" if n == 1 else f"{model}-{stamp}-{n}")
        if _move_into_place(path, files, f"run directory {path}"):
            return path
    raise ConfigError(f"{root}: more than 999 runs of {model} started at {stamp}; pass --out")


def check_new_out(out: str | Path) -> None:
    """Refuse `--out` before any work when `new_run_dir` would (it holds files, or its parent cannot be written).

    Example:
        >>> import tempfile
        >>> check_new_out(tempfile.mkdtemp() + "/run")  # free: nothing to say
    """
    out = Path(out)
    target = out.resolve() if out.is_symlink() else out
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not _abandoned(target):
        raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new one")
    parent = next((p for p in target.absolute().parents if p.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK)):
        raise ConfigError(f"--out {out}: cannot create the run directory in {parent} (not a writable directory)")


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
        if "config.json" in files:
            _hold(building / "config.json", final)  # before it is visible: no moment at which it looks abandoned
        os.rename(building, final)  # replaces an empty directory; refuses anything else
        return True
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        if isinstance(exc, WriteError):  # a full disk or a read-only place: named as the file the run would have had
            raise WriteError(final / Path(exc.filename).name, exc.errno) from None
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return False
        raise ConfigError(f"{label}: cannot create the run directory ({exc.strerror or exc})") from None


_HELD: dict[int, Path] = {}  # lock -> run directory, for the runs this process made that hold only config.json


def _hold(config: Path, final: Path) -> None:
    """Lock a new run's config.json while this process lives (not `_abandoned`); let go of runs that wrote more."""
    import fcntl

    for fd, directory in list(_HELD.items()):
        try:
            done = not directory.is_dir() or any(entry.name != "config.json" for entry in directory.iterdir())
        except OSError:
            done = True
        if done:
            os.close(fd)
            del _HELD[fd]
    fd = os.open(config, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD[fd] = final  # `config` is still in the directory being built, renamed to `final` next


def _abandoned(path: Path) -> bool:
    """Whether `path` is a run killed before its first epoch: only config.json (and temporaries), lock not held."""
    import fcntl

    try:
        names = {entry.name for entry in path.iterdir()}
    except OSError:
        return False
    if "config.json" not in names or any(n != "config.json" and not n.endswith(".tmp") for n in names):
        return False
    try:
        config = read_json(path / "config.json", "run configuration")
        fd = os.open(path / "config.json", os.O_RDONLY)
    except (LinearNetsError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a living process holds it: a run still starting
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return isinstance(config, dict) and config.get("format") == Run.RUN_FORMAT


def json_safe(obj: Any) -> Any:
    """`obj` with every NaN and ±inf float as None (null): JSON has no such numbers (a constant target's R², say).

    Example:
        >>> json_safe({"r2": float("nan"), "rows": [1.5, float("inf")]})
        {'r2': None, 'rows': [1.5, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def _json_text(obj: Any) -> str:
    """`obj` as indented JSON text, refused above `checks.MAX_JSON_BYTES` (which `evaluate` and `--resume` refuse)."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    if len(text) > (limit := checks.MAX_JSON_BYTES):
        raise DataError(f"this run's JSON would be {len(text) / 1e6:.0f} MB, above the {limit >> 20} MiB "
                        "a run directory's files may hold: use fewer or shorter category names (--categorical)")
    return text


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_text(path, _json_text(obj))


def read_json(path: Path, what: str = "file") -> Any:
    """Read JSON (size bounded); a missing or corrupt file is a `DataError` that names it."""
    data = checks.read_file_bytes(path, what, checks.MAX_JSON_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise DataError(f"{what} {path} is corrupt: {reason}") from None


@contextlib.contextmanager
def refused(prefix: str, *errors: type[Exception]) -> Iterator[None]:
    """Raise any of `errors` the block raises as a `DataError` reading `prefix` and its message.

    Example:
        >>> with refused("config.json: options.", ConfigError):
        ...     raise ConfigError("threads must be a string, got 5", "threads")
        Traceback (most recent call last):
        ...
        linear_nets.errors.DataError: config.json: options.threads must be a string, got 5
    """
    try:
        yield
    except errors as exc:
        raise DataError(prefix + str(exc)) from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of `run_dir/metrics.jsonl` (none when missing); `DataError` naming a line that is not an object."""
    where = run_dir / "metrics.jsonl"
    if not where.exists():
        return []
    rows = []
    text = checks.read_file_bytes(where, "metrics", checks.MAX_METRICS_BYTES).decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = None
        with contextlib.suppress(json.JSONDecodeError):
            row = json.loads(line)
        if not isinstance(row, dict):
            raise DataError(f"metrics {where} is corrupt at line {number}: not a JSON object")
        rows.append(row)
    return rows


def run_directories(root: str | Path) -> Iterator[Path]:
    """The directories directly under `root` (hidden ones, such as runs being created, left out)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    yield from sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def save_tensors(path: Path, tensors: Mapping[str, Tensor], meta: Mapping[str, Any] | None = None) -> None:
    """Save tensors to `path` (safetensors), then its sidecar `.json` (shapes, dtypes, SHA-256 and `meta`)."""
    data = safetensors.torch.save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(path, data)
    described = {k: {"shape": list(v.shape), "dtype": _dtype_name(v.dtype)} for k, v in tensors.items()}
    sha256 = hashlib.sha256(data).hexdigest()
    write_json(path.with_suffix(".json"),
               {"format": FORMAT, "file": path.name, "sha256": sha256, "tensors": described, "meta": dict(meta or {})})


def load_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(tensors, meta) saved by `save_tensors`, checked against the sidecar; `DataError` when anything differs."""
    description = path.with_suffix(".json")
    sidecar = read_json(description, "tensor description")
    described = _described_tensors(sidecar, description)
    data = checks.read_file_bytes(path, "tensor file", checks.MAX_TENSOR_FILE_BYTES)
    if hashlib.sha256(data).hexdigest() != sidecar["sha256"]:
        raise DataError(f"{path} is truncated or was modified (SHA-256 differs from {path.name}'s description)")
    with refused(f"{path} is not a valid safetensors file: ", Exception):  # its own error type for every malformed one
        tensors = safetensors.torch.load(data)
    if set(tensors) != set(described):
        raise DataError(f"{path} holds tensors {sorted(tensors)}, but {description.name} lists {sorted(described)}")
    for name, tensor in tensors.items():
        held = (list(tensor.shape), _dtype_name(tensor.dtype))
        if held != described[name]:
            raise DataError(f"{path}: tensor {name!r} is {held[1]} of shape {held[0]}, but {description.name} says "
                            f"{described[name][1]} of shape {described[name][0]}")  # fmt: skip
    return tensors, sidecar["meta"]


def _described_tensors(sidecar: Any, description: Path) -> dict[str, tuple[list[int], str]]:
    """The sidecar's {name: (shape, dtype)}, after checking every field of it; `DataError` naming the field."""
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise DataError(f"{description} is not a linear-nets tensor description")
    sha256, tensors, meta = sidecar.get("sha256"), sidecar.get("tensors"), sidecar.setdefault("meta", {})
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise DataError(f"{description}: sha256 must be 64 hexadecimal digits, got {sha256!r}")
    if not isinstance(meta, dict):
        raise DataError(f"{description}: meta must be a JSON object, got {type(meta).__name__}")
    if not isinstance(tensors, dict):
        raise DataError(f"{description}: tensors must be a JSON object, got {type(tensors).__name__}")
    described = {}
    for name, entry in tensors.items():
        shape, dtype = (entry.get("shape"), entry.get("dtype")) if isinstance(entry, dict) else (None, None)
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise DataError(f"{description}: tensors.{name}.shape must be a list of sizes >= 0, got {shape!r}")
        if dtype not in DTYPES:
            raise DataError(f"{description}: tensors.{name}.dtype must be one of {', '.join(sorted(DTYPES))}, "
                            f"got {dtype!r}")  # fmt: skip
        described[name] = (shape, dtype)
    return described


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_state(tensors: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: Path | str) -> None:
    """`DataError` when `tensors` differ from the model's `expected` in names, shapes or dtypes, or are not finite."""
    if set(tensors) != set(expected):
        raise DataError(f"{source} holds tensors {sorted(tensors)}, but this model has {sorted(expected)}")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise DataError(f"{source}: tensor {name!r} has shape {list(tensor.shape)}, but this model needs "
                            f"{list(expected[name].shape)}")  # fmt: skip
        if tensor.dtype != expected[name].dtype:
            raise DataError(f"{source}: tensor {name!r} is {_dtype_name(tensor.dtype)}, but this model needs "
                            f"{_dtype_name(expected[name].dtype)}")  # fmt: skip
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DataError(f"{source}: tensor {name!r} holds NaN or infinite values")


def rng_states(*generators: torch.Generator) -> dict[str, Tensor]:
    """The global torch RNG state and each generator's state, as tensors for a checkpoint."""
    states = {f"rng.generator.{i}": g.get_state() for i, g in enumerate(generators)}
    return {"rng.torch": torch.get_rng_state(), **states}


def restore_rng_states(states: Mapping[str, Tensor], *generators: torch.Generator) -> None:
    """Inverse of `rng_states`."""
    torch.set_rng_state(states["rng.torch"])
    for i, g in enumerate(generators):
        g.set_state(states[f"rng.generator.{i}"])


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split `optimizer.state_dict()` into tensors (a list of them, as L-BFGS keeps: `key.0`, ...) and the JSON rest.

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
    """Inverse of `optimizer_state`; `ValueError` when the saved parameter groups differ from the optimizer's."""
    def kinds(groups: list) -> list:  # each group's keys and the JSON type of each value
        return [{k: type(v) for k, v in group.items()} if isinstance(group, dict) else None for group in groups]

    if kinds(rest["param_groups"]) != kinds(json.loads(json.dumps(optimizer.state_dict()["param_groups"]))):
        raise ValueError("its optimizer's param_groups are not those of this optimizer")
    state: dict[int, dict[str, Any]] = {}
    for param_id, entries in rest["scalars"].items():
        for key, value in entries.items():
            if isinstance(value, dict) and "tensor_list" in value:  # numbered tensors, None where one was
                value = [tensors.get(f"optimizer.{param_id}.{key}.{i}") for i in range(value["tensor_list"])]
            state.setdefault(int(param_id), {})[key] = value
    for name, value in tensors.items():
        _, param_id, key = name.split(".", 2)
        if not isinstance(state.get(int(param_id), {}).get(key.rsplit(".", 1)[0]), list):  # not a list's element
            state.setdefault(int(param_id), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


class Run:
    """A run directory (`path`) and what its `config.json` holds (`config`, at least `model`).

    Example:
        >>> import tempfile
        >>> run = Run.create("softmax", {"args": {"lr": 0.1}}, out=tempfile.mkdtemp() + "/run")
        >>> Run.open(run.path).config["args"]
        {'lr': 0.1}
    """

    RUN_FORMAT = "linear-nets/run/1"
    CONFIGS: ClassVar[dict[str, type]] = {"softmax": SoftmaxConfig, "linreg": LinregConfig}
    """Each model's config class: what config.json's `config` section must describe."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path, self.config = Path(path), config

    @property
    def model(self) -> str:
        """The model's name, e.g. "softmax" or "linreg"."""
        return self.config["model"]

    @property
    def spec(self) -> Any:
        """The training schema a table run recorded (config.json's `data.spec`), or None (images, synthetic data)."""
        return (self.config.get("data") or {}).get("spec")

    @functools.cached_property
    def fit_config(self) -> Any:
        """The config the run was trained with (older runs: from their args); `DataError` when not a valid one."""
        cls = self.CONFIGS[self.model]
        values = self.config.get("config")
        if values is None:  # written by linear-nets 0.1 before one config: its argparse arguments
            args = self.config.get("args", {})
            values = {p.name: args[p.name] for p in cls.PARAMS if args.get(p.name) is not None}
            if "huber_sigma" in args and args["huber_sigma"] is not None:
                values["huber_delta"] = args["huber_sigma"]
        with refused(f"{self.path}/config.json does not describe a {cls.__name__}: ", ConfigError, TypeError):
            return from_dict(cls, values)

    @property
    def finished(self) -> bool:
        """Whether training ended and its results were written (`summary.json` is the last file a run writes)."""
        return (self.path / "summary.json").is_file()

    @classmethod
    def create(cls, model: str, config: Mapping[str, Any], out: str | Path | None = None) -> Run:
        """Make a new run directory holding its `config.json` (atomically: see `new_run_dir`)."""
        full = {"format": cls.RUN_FORMAT, "model": model, **config}
        return cls(new_run_dir(model, out, files={"config.json": _json_text(full)}), full)

    @classmethod
    def open(cls, path: str | Path, model: str | None = None) -> Run:
        """Open an existing run directory; `ConfigError` or `DataError` if missing, not ours, or its config is bad."""
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"run directory {path} does not exist")
        config = read_json(path / "config.json", "run configuration")
        if not isinstance(config, dict) or config.get("format") != cls.RUN_FORMAT:
            raise DataError(f"{path} is not a linear-nets run directory (its config.json is not ours)")
        if config.get("model") not in cls.CONFIGS:
            raise DataError(f"{path / 'config.json'}: model must be one of {', '.join(cls.CONFIGS)}, "
                            f"got {config.get('model')!r}")  # fmt: skip
        if model is not None and config.get("model") != model:
            raise DataError(f"{path} is a run of model {config.get('model')!r}, not {model!r}")
        run = cls(path, config)
        check_run_config(run)
        return run

    @contextlib.contextmanager
    def removed_on_error(self) -> Iterator[Run]:
        """Remove this run directory if the block raises a `LinearNetsError` (diverged, disk full)."""
        from linear_nets.pipeline.distributed import PeerLost

        try:
            yield self
        except PeerLost:  # not the run's fault: its checkpoints are what a restarted group resumes from
            raise
        except LinearNetsError:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the run directory (the one a symbolic link `--out` points to, not the link)."""
        shutil.rmtree(self.path.resolve(), ignore_errors=True)

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite the per-epoch rows as `metrics.csv` and `metrics.jsonl` (whole files, atomically)."""
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path / "metrics.csv", buffer.getvalue())
        lines = (json.dumps(json_safe(dict(r)), allow_nan=False) + "\n" for r in rows)
        atomic_write_text(self.path / "metrics.jsonl", "".join(lines))

    def save_checkpoint(self, epoch: int, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
        """Write `checkpoint-<epoch>.safetensors` (+ its JSON), then remove older ones."""
        path = self.path / f"checkpoint-{epoch}.safetensors"
        save_tensors(path, tensors, {"epoch": epoch, **state})
        for old in self._checkpoints():
            if old != path:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)

    def load_checkpoint(self, config: Mapping[str, Any] | None = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The newest checkpoint: (tensors, state); `DataError` if none, malformed or of another `config`."""
        path = self.newest_checkpoint()
        if path is None:
            if _abandoned(self.path):
                raise DataError(f"{self.path} was stopped before its first epoch ended: there is nothing to resume; "
                                "run the same command without --resume (it starts over in the same directory)")
            raise DataError(f"{self.path} holds no checkpoint to resume from (it was not trained with checkpoints)")
        tensors, state = load_tensors(path)
        epoch, history, optimizer = state.get("epoch"), state.get("history"), state.get("optimizer", {})
        where = path.with_suffix(".json")
        if epoch != int(path.stem.removeprefix("checkpoint-")) or type(epoch) is not int:
            raise DataError(f"{where}: meta.epoch must be the epoch in the file's name, got {epoch!r}")
        if not isinstance(history, list):  # its rows are checked as the recorder restores them
            raise DataError(f"{where}: meta.history must be a list (a row per epoch), got {type(history).__name__}")
        if not (isinstance(optimizer, dict) and isinstance(optimizer.get("param_groups", []), list)
                and isinstance(optimizer.get("scalars", {}), dict)):  # fmt: skip
            raise DataError(f"{where}: meta.optimizer must be an object with a list param_groups and an object "
                            "scalars")  # fmt: skip
        saved = state.get("config")
        if config is None or saved is None:  # None: written before checkpoints recorded their config
            return tensors, state
        if not isinstance(saved, dict):
            raise DataError(f"{path}: its description's config is not a JSON object")
        changed = [name for name in config if saved.get(name) != config[name]]
        if changed:
            was = ", ".join(f"{name} {saved.get(name)}" for name in changed)
            asked = ", ".join(f"{name} {config[name]}" for name in changed)
            raise DataError(f"{path} was written with {was}, but this fit asks for {asked}: a run resumes with the "
                            "options it started with (was its config.json edited?)")  # fmt: skip
        return tensors, state

    def newest_checkpoint(self) -> Path | None:
        """The newest checkpoint whose description was written (so it is complete), or None."""
        complete = [p for p in self._checkpoints() if p.with_suffix(".json").exists()]
        return complete[-1] if complete else None

    def _checkpoints(self) -> list[Path]:
        numbered = [(p.stem.removeprefix("checkpoint-"), p) for p in self.path.glob("checkpoint-*.safetensors")]
        return [p for _, p in sorted((int(epoch), p) for epoch, p in numbered if epoch.isdigit())]

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
    """What a run's config.json holds besides the model's name: config, data identity, run options and versions."""
    return {
        "config": dict(config),
        "data": dict(data or {}),
        "options": dict(options or {}),
        "versions": {"linear_nets": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --- what config.json may hold besides the config: checked with the rules of the flags that wrote it -----------------

RUN_OPTIONS = (
    Param("data_dir", str, "Fashion-MNIST directory", optional=True),
    Param("checkpoint_every", int, "epochs between checkpoints, 0 for none", low=0),
    Param("threads", str, "how the torch threads were chosen", optional=True),
    Param("torchrun_job", str, "torchrun's job id, for a restarted group to find its run", optional=True),
    Param("tensorboard", bool, "write TensorBoard event files"),
)
TABLE_OPTIONS = (
    Param("data", str, "the table trained on"),
    Param("target", str, "the column predicted"),
    Param("test_data", str, "a table to test on", optional=True),
    Param("test_fraction", float, "share of rows held out for testing", low=0, high=1, high_open=True),
    Param("drop_missing", bool, "drop rows with a missing value"),
    Param("stream", bool, "read in batches"),
)


def check_run_config(run: Run) -> None:
    """Check a run's config.json with the rules of the flags that wrote it; `DataError` naming the field."""
    where = run.path / "config.json"
    for section in ("config", "data", "options", "args"):
        if run.config.get(section) is not None:
            _check_fields((), run.config[section], where, section)
    run.fit_config  # noqa: B018 - read, so checked
    options = run.config.get("options") or {}
    _check_fields(RUN_OPTIONS, options, where, "options")
    table = options.get("table")
    if table is not None:
        _check_fields(TABLE_OPTIONS, table, where, "options.table")
        for name in ("features", "categorical", "na_values"):
            names = table.get(name)
            if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise DataError(f"{where}: options.table.{name} must be a list of column names, got {names!r}")
        from linear_nets.pipeline.tables import TableOptions

        with refused(f"{where}: options.table: ", TypeError, ConfigError):
            TableOptions(**table).check()
    spec = run.spec
    if spec is not None:  # a table run's training schema
        from linear_nets.data.table_spec import TableSpec

        with refused(f"{where}: data.spec: ", DataError):
            if not isinstance(spec, dict):
                raise DataError(f"must be a JSON object, got {type(spec).__name__}")
            TableSpec.from_dict(spec)
    synthetic = (run.config.get("data") or {}).get("synthetic")
    if synthetic is not None:
        _check_fields(SyntheticData.PARAMS, synthetic, where, "data.synthetic", required=True)


def _check_fields(params: Sequence[Param], values: Any, where: Path, section: str, required: bool = False) -> None:
    """Refuse `values` unless a JSON object whose fields pass `params`' checks (and, if `required`, are all there)."""
    if not isinstance(values, dict):
        raise DataError(f"{where}: {section} must be a JSON object, got {type(values).__name__}")
    for param in params:
        if required and param.name not in values:
            raise DataError(f"{where}: {section}.{param.name} is missing")
        if param.name in values:
            with refused(f"{where}: {section}.", ConfigError):
                param.check(values[param.name])
