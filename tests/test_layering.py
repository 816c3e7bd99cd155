"""The chapter's math is a leaf: no module outside `pipeline/` and `cli/` imports them (DESIGN.md: the core calls
down, never up). Imports are read with `ast`, so an import inside a function, or `import_module("...")` with a
literal name, counts as much as one at the top."""

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
