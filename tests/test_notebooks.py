"""Every notebook runs top to bottom in a real Jupyter kernel, offline, with the real Fashion-MNIST.

The kernel is this test run's Python (the venv's), whatever kernelspecs the machine has installed: a throwaway
kernelspec pointing at `sys.executable` is written to a temporary directory and only that directory is searched.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402 (after the importorskip guards)
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SECTION_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))  # one per section, d2l-chapter-3, questions
EXERCISE_NOTEBOOKS = sorted((NOTEBOOK_DIR / "exercises").glob("*.ipynb"))  # one per section's exercises
NOTEBOOKS = SECTION_NOTEBOOKS + EXERCISE_NOTEBOOKS
IDS = [str(p.relative_to(NOTEBOOK_DIR).with_suffix("")) for p in NOTEBOOKS]
KERNEL_NAME = "linear-nets-test"
CELL_TIMEOUT_S = 120


@pytest.mark.parametrize("notebooks", [SECTION_NOTEBOOKS, EXERCISE_NOTEBOOKS], ids=["sections", "exercises"])
def test_every_chapter_section_has_a_notebook(notebooks):
    sections = [p.name.split("-")[0] for p in notebooks if p.name[0].isdigit()]  # d2l-chapter-3 spans them all
    assert sections == ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec directory whose only kernel runs this interpreter."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    spec = kernels / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "linear-nets", "language": "python"}))
    return kernels


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom(path, kernel_dir, tmp_path):
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=False, resources={"metadata": {"path": str(tmp_path)}}
    )
    # The kernel chooses its own (inline) backend, as it does for a learner; the tests' Agg setting stays here.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    # One compute thread: on a 2-core machine busy with other work, torch's OpenMP threads wait on each other at
    # every tiny matmul and a 10-epoch run took 20-45 s instead of 2 (measured); one thread is as fast unloaded.
    env.setdefault("OMP_NUM_THREADS", "1")
    client.execute(env=env)  # raises CellExecutionError naming the cell on the first error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}) for o in outputs), (
        "each notebook shows at least one figure"
    )
