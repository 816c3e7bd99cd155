"""Run directories and checkpoints: results that outlive the terminal.

A run directory holds `config.json`, `metrics.csv` + `metrics.jsonl` (a row per epoch), figures,
`model.safetensors` + `model.json` and `summary.json`; while training, `checkpoint.json` points at the latest
`checkpoint-<epoch>.safetensors`. Every file is written atomically.

Loading never executes code from a file: tensors come from safetensors, everything else from JSON. Each
safetensors file is listed in its JSON sidecar with its SHA-256, so a truncated or tampered file is refused
with a `DataError` instead of being loaded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from linear_nets.atomic import atomic_write_bytes, atomic_write_text
from linear_nets.errors import ConfigError, DataError

FORMAT = "linear-nets/1"


def new_run_dir(model: str, out: str | Path | None = None, root: str | Path = "runs") -> Path:
    """Create a fresh run directory and return it.

    Args:
        model: model name, used in the default name `<root>/<model>-<YYYYmmdd-HHMMSS>`.
        out: an explicit directory; it must not exist yet or be empty, so an earlier run is never overwritten.
        root: parent of the default name.

    Raises:
        ConfigError: `out` holds files already, or the directory cannot be created.

    Example:
        >>> import tempfile
        >>> new_run_dir("softmax", out=tempfile.mkdtemp() + "/run").name
        'run'
    """
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(root) / f"{model}-{stamp}"
        suffix = 1
        while out.exists():
            suffix += 1
            out = Path(root) / f"{model}-{stamp}-{suffix}"
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new one")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the run directory ({exc.strerror or exc})") from None
    return out


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


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
