"""The chapter's math is a leaf: no module outside `pipeline/` and `cli/` imports them (DESIGN.md: the core calls
down, never up). Imports are read with `ast`, so an import inside a function, or `import_module("...")` with a
literal name, counts as much as one at the top. And validation has one boundary: ConfigError and DataError are
raised from at most 12 modules (`RAISERS`); the math raises neither."""

from __future__ import annotations

import ast
from pathlib import Path

import linear_nets

PACKAGE = Path(linear_nets.__file__).parent
MACHINERY = ("linear_nets.pipeline", "linear_nets.cli")
ENTRY_POINTS = {
    "linear_nets.__main__": "`python -m linear_nets` runs the command line",
    "linear_nets.sklearn": "the estimators' public name, re-exported from linear_nets.pipeline.sklearn",
    "linear_nets": "`linear_nets.load(RUN)`, the one way to load a run from Python, re-exported from pipeline.saved",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` names in an import statement (anywhere in the file) or in `import_module("...")`."""
    names: set[str] = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *[base] * bool(base)])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == (
            "import_module"
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
            elif node.args and isinstance(node.args[0], ast.JoinedStr):  # f"linear_nets.{x}.y": its fixed prefix
                first = node.args[0].values[0]
                if isinstance(first, ast.Constant):
                    names.add(first.value.rstrip("."))
    return names


def core_modules() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not module_name(path).startswith(MACHINERY) and module_name(path) not in ENTRY_POINTS
    ]


def upward(path: Path) -> list[str]:
    return sorted(name for name in imported_modules(path) if name.startswith(MACHINERY))


def test_the_core_imports_nothing_from_the_pipeline_or_the_cli():
    offenders = {module_name(path): upward(path) for path in core_modules() if upward(path)}
    assert offenders == {}
    assert len(core_modules()) > 30  # the scan sees the whole core (a moved package would empty it)


def test_the_scan_sees_function_level_relative_and_dynamic_imports(tmp_path):
    source = tmp_path / "linear_nets" / "scratch" / "probe.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "def f():\n    from linear_nets.pipeline.config import SoftmaxConfig\n"
        "def g():\n    from ..cli import main\n"
        "def h():\n    import_module(f'linear_nets.pipeline.{name}')\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "linear_nets"
    try:
        assert upward(source) == ["linear_nets.cli", "linear_nets.cli.main", "linear_nets.pipeline",
                                  "linear_nets.pipeline.config", "linear_nets.pipeline.config.SoftmaxConfig"]
    finally:
        PACKAGE = saved


def test_the_shared_choices_module_imports_no_torch():
    assert imported_modules(PACKAGE / "choices.py") == {"__future__", "__future__.annotations"}


# --- one validation boundary ----------------------------------------------------------------------------------------

RAISERS = {
    "linear_nets.pipeline.config": "a config, validated once by its field table",
    "linear_nets.checks": "data on whole tensors, once per fit (per chunk when streamed); memory and size limits",
    "linear_nets.data.idx": "untrusted IDX files",
    "linear_nets.data.fashion_mnist": "the data set's files, found, verified and downloaded",
    "linear_nets.data.tables": "untrusted tables",
    "linear_nets.data.table_spec": "a table's schema and encoding",
    "linear_nets.pipeline.runs": "run directories and checkpoints",
    "linear_nets.pipeline.saved": "saved runs loaded from Python",
    "linear_nets.pipeline.sklearn": "scikit-learn's parameters",
    "linear_nets.pipeline.fit": "what only a fit can tell (the device, data-parallel limits)",
    "linear_nets.pipeline.distributed": "the process group",
    "linear_nets.cli.common": "what the command line reads",
}
"""The modules that may raise ConfigError or DataError (issue 25: at most 12): everything else trusts its arguments
or calls one of these."""


def raised_errors(path: Path) -> set[str]:
    """The names of ConfigError and DataError in `raise` statements of `path` (`raise X(...)`, `raise X`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = getattr(exc, "id", getattr(exc, "attr", None))
            if name in ("ConfigError", "DataError"):
                names.add(name)
    return names


def test_the_scan_sees_raises_of_either_form(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    raise ConfigError('x')\ndef g(e):\n    raise errors.DataError\n"
                      "def h():\n    raise ValueError('ConfigError')\n")  # fmt: skip
    assert raised_errors(source) == {"ConfigError", "DataError"}


def test_the_math_raises_no_config_or_data_error():
    math = ("losses", "softmax", "models", "optim", "regularization", "diagnostics", "demonstrations",
            "data.synthetic", "data.batches", "closed_form")  # fmt: skip
    raisers = {module_name(p) for p in sorted(PACKAGE.rglob("*.py")) if raised_errors(p)}
    assert raisers.isdisjoint(f"linear_nets.{name}" for name in math)


def test_config_and_data_errors_are_raised_from_at_most_the_12_boundary_modules():
    raisers = {module_name(p) for p in sorted(PACKAGE.rglob("*.py")) if raised_errors(p)}
    assert len(RAISERS) == 12 and "linear_nets.checks" in raisers
    assert sorted(raisers - set(RAISERS)) == []
