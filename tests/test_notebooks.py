"""Every notebook runs top to bottom in a real Jupyter kernel, offline, with the real Fashion-MNIST.

The kernel is this test run's Python (the venv's), whatever kernelspecs the machine has installed: a throwaway
kernelspec pointing at `sys.executable` is written to a temporary directory and only that directory is searched.

The notebooks share one kernel per test process, reset to a clean slate before each (`FRESH_START`): starting a
kernel and importing torch into it cost about 5 s of CPU per notebook, half of all the notebooks cost (measured on a
2-core machine: 192 s of CPU with a kernel each, 98 s with one shared).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
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


# Before each notebook: what a new kernel would give it. The namespace is emptied (a notebook that forgets an import
# fails as it would alone), figures closed, matplotlib's settings and the inline format (d2l.set_figsize and
# use_svg_display change them) restored, torch's global generator reseeded at random as in a new process, and the
# working directory is the test's own. Imported modules stay: that is the time saved.
FRESH_START = """\
%reset -f
import os, matplotlib, matplotlib.pyplot, matplotlib_inline.backend_inline, torch
matplotlib.pyplot.close("all")
matplotlib.rc_file_defaults()
matplotlib_inline.backend_inline.set_matplotlib_formats("png")
torch.seed()
os.chdir({cwd!r})
%reset -f
"""


@pytest.fixture(scope="module")
def kernel(kernel_dir, tmp_path_factory) -> Iterator[KernelManager]:
    """The kernel this module's notebooks share, shut down after the last one."""
    # The kernel chooses its own (inline) backend, as it does for a learner; the tests' Agg setting stays here. Module
    # scope comes before conftest's per-test cache, so the kernel gets a throwaway cache of its own.
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "LINEAR_NETS_DATA")}
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("kernel-cache"))
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    km.start_kernel(env=env, cwd=str(tmp_path_factory.mktemp("kernel-cwd")))
    yield km
    km.shutdown_kernel(now=True)


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom(path, kernel, tmp_path):
    nb = nbformat.read(path, as_version=4)
    kc = kernel.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=CELL_TIMEOUT_S)
        reply = kc.execute_interactive(FRESH_START.format(cwd=str(tmp_path)), timeout=CELL_TIMEOUT_S)
        assert reply["content"]["status"] == "ok", reply["content"]
        kc.allow_stdin = False
        client = nbclient.NotebookClient(nb, km=kernel, timeout=CELL_TIMEOUT_S, allow_errors=False)
        client.kc = kc
        client.execute()  # raises CellExecutionError naming the cell on the first error
    except BaseException:
        kernel.restart_kernel(now=True)  # a failed or timed-out notebook may leave it busy: the next gets a new one
        raise
    finally:
        kc.stop_channels()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}) for o in outputs), (
        "each notebook shows at least one figure"
    )
