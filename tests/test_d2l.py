"""`from linear_nets import d2l`: the book's chapter-3 names on the package's engine.

Two halves: unit tests of each name against an independent reference (torch.nn.functional, numpy, the raw IDX
files), and the chapter's code as a learner types it (tests/d2l_chapter/*.py, import line changed) run in a fresh
interpreter, in a temporary directory, with no display, reaching the book's numbers.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from linear_nets import d2l, plotting, timing, training
from linear_nets.data import fashion_mnist, synthetic
from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import DataError, TrainingDiverged
from linear_nets.scratch import linear_regression

CHAPTER = Path(__file__).resolve().parent / "d2l_chapter"
REAL_DATA = Path("/usr/share/datasets/fashion-mnist")
TEXT_LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BOOK_NAMES = [
    "use_svg_display",
    "set_figsize",
    "set_axes",
    "plot",
    "Timer",
    "synthetic_data",
    "linreg",
    "squared_loss",
    "sgd",
    "load_array",
    "get_fashion_mnist_labels",
    "show_images",
    "get_dataloader_workers",
    "load_data_fashion_mnist",
    "accuracy",
    "evaluate_accuracy",
    "Accumulator",
    "train_epoch_ch3",
    "Animator",
    "train_ch3",
    "predict_ch3",
    "evaluate_loss",
    "normal",
    "matmul",
    "reshape",
    "argmax",
    "astype",
    "reduce_sum",
    "reduce_mean",
    "size",
    "numpy",
    "transpose",
    "to",
    "plt",
    "torch",
    "nn",
    "ones",
    "zeros",
    "tensor",
    "arange",
    "exp",
    "log",
    "rand",
    "linspace",
    "concat",
    "stack",
    "abs",
    "eye",
    "float32",
    "int32",
]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in an empty directory, with the per-process figure numbers starting afresh."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(d2l, "_figures_saved", {})
    yield tmp_path
    plotting.pyplot().close("all")


def blobs(n: int = 600, d: int = 20, classes: int = 10, seed: int = 0, shuffle_labels: bool = False):
    """Well separated Gaussian classes (learnable in a few epochs), or the same inputs with shuffled labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    X = 4 * torch.randn(classes, d, generator=g)[y] + torch.randn(n, d, generator=g)
    if shuffle_labels:
        y = y[torch.randperm(n, generator=g)]
    return X, y


# --- the names ----------------------------------------------------------------------------------------------------


def test_every_name_the_chapter_reaches_through_d2l_is_there():
    assert [n for n in BOOK_NAMES if not hasattr(d2l, n)] == []
    assert set(BOOK_NAMES) <= set(dir(d2l))


def test_names_are_the_packages_own_implementations_not_copies():
    assert d2l.Timer is timing.Timer
    assert d2l.Accumulator is training.Accumulator
    assert d2l.evaluate_accuracy is training.evaluate_accuracy
    assert d2l.linreg is linear_regression.linreg and d2l.sgd is linear_regression.sgd
    assert d2l.squared_loss is linear_regression.squared_loss
    assert d2l.synthetic_data is synthetic.synthetic_data
    assert d2l.get_fashion_mnist_labels is fashion_mnist.get_fashion_mnist_labels
    for name in ("show_images", "set_axes", "set_figsize", "use_svg_display"):
        assert getattr(d2l, name) is getattr(plotting, name)
    assert issubclass(d2l.Animator, plotting.Animator)


def test_importing_d2l_does_not_import_pyplot_until_plt_is_used():
    code = (
        "import sys\n"
        "from linear_nets import d2l\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'imported too early'\n"
        "from linear_nets.d2l import plt\n"
        "assert plt is sys.modules['matplotlib.pyplot'] is d2l.plt\n"
        "print(plt.get_backend())\n"
        "try:\n"
        "    d2l.no_such_name\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    backend, error = proc.stdout.splitlines()
    assert backend.lower() == "agg"  # no display: a backend that cannot fail
    assert "has no attribute 'no_such_name'" in error


def test_tensor_aliases_do_what_torch_does():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=g)
    ref = x.double().numpy()
    assert torch.equal(d2l.reshape(x, (4, 3)), x.reshape(4, 3))
    assert d2l.argmax(x, axis=1).tolist() == ref.argmax(axis=1).tolist()
    assert d2l.astype(x > 0, torch.float32).dtype == torch.float32
    np.testing.assert_allclose(d2l.reduce_sum(x, axis=0).numpy(), ref.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(d2l.reduce_mean(x).item(), ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(d2l.matmul(x, d2l.transpose(x)).numpy(), ref @ ref.T, rtol=1e-5, atol=1e-6)
    assert d2l.size(x) == 12
    w = x.clone().requires_grad_(True)
    assert isinstance(d2l.numpy(w), np.ndarray) and np.array_equal(d2l.numpy(w), x.numpy())
    assert d2l.normal(0, 0.01, (2, 3)).shape == (2, 3) and d2l.zeros(2).sum() == 0


def test_accuracy_is_a_python_float_count_of_correct_argmaxes():
    g = torch.Generator().manual_seed(1)
    y_hat, y = torch.randn(50, 10, generator=g), torch.randint(0, 10, (50,), generator=g)
    correct = d2l.accuracy(y_hat, y)
    assert type(correct) is float
    assert correct == float((y_hat.numpy().argmax(axis=1) == y.numpy()).sum())


def test_evaluate_loss_is_the_mean_per_example_loss_over_every_batch():
    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(23, 3, generator=g), torch.randn(23, generator=g)  # y flat: reshaped to the output
    net = nn.Linear(3, 1)
    data_iter = ArrayLoader((X, y), batch_size=5)  # uneven last batch: a mean of batch means would be wrong
    got = d2l.evaluate_loss(net, data_iter, nn.MSELoss(reduction="none"))
    with torch.no_grad():
        expected = F.mse_loss(net(X).double(), y.double().reshape(-1, 1)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert d2l.evaluate_loss(net, data_iter, d2l.squared_loss) == pytest.approx(expected / 2, rel=1e-5)


def test_load_array_shuffles_in_an_order_fixed_by_torch_manual_seed():
    X, y = torch.arange(40.0).reshape(20, 2), torch.arange(20)

    def first_labels(seed: int | None, is_train: bool = True) -> list[int]:
        if seed is not None:
            torch.manual_seed(seed)
        return next(iter(d2l.load_array((X, y), 6, is_train)))[1].tolist()

    assert first_labels(3) == first_labels(3)
    assert first_labels(3) != first_labels(4)
    assert first_labels(None, is_train=False) == [0, 1, 2, 3, 4, 5]
    assert [len(b) for _, b in d2l.load_array((X, y), 6)] == [6, 6, 6, 2]


def test_load_data_fashion_mnist_without_the_files_says_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [tmp_path / "nothing-here"])
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        d2l.load_data_fashion_mnist(256)  # offline: never a download the learner did not ask for


def test_get_dataloader_workers_is_the_books_4():
    assert d2l.get_dataloader_workers() == 4


def test_plot_draws_a_new_figure_and_returns_none_as_the_book_does(in_tmp):
    x = np.arange(0, 3, 0.5)
    with matplotlib.rc_context():
        d2l.set_figsize((4, 3))
        assert tuple(matplotlib.rcParams["figure.figsize"]) == (4, 3)
        assert d2l.plot(x, [x**2, 2 * x - 3], "x", "f(x)", legend=["f", "tangent"]) is None
    axes = d2l.plt.gca()
    assert [list(line.get_ydata()) for line in axes.get_lines()] == [list(x**2), list(2 * x - 3)]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["f", "tangent"]


# --- Animator, train_ch3, predict_ch3 ------------------------------------------------------------------------------


def test_animator_outside_jupyter_saves_its_figure_and_says_where_once(in_tmp, capsys):
    first = d2l.Animator(xlabel="epoch", xlim=[1, 3], legend=["loss"])
    for epoch in (1, 2, 3):
        first.add(epoch, 1 / epoch)
    assert capsys.readouterr().out == f"figure saved to {in_tmp / 'animator.png'}\n"
    assert (in_tmp / "animator.png").read_bytes()[:8] == PNG_MAGIC
    assert first.Y == [[1.0, 0.5, 1 / 3]]

    d2l.Animator(legend=["loss"]).add(1, 0.5)  # a second one in the same process gets its own file
    assert capsys.readouterr().out == f"figure saved to {in_tmp / 'animator-2.png'}\n"

    d2l.Animator(save_to=in_tmp / "mine.png").add(1, 0.5)  # a file of one's own: no message
    d2l.Animator(save_to=None).add(1, 0.5)  # None: no file
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in in_tmp.iterdir()) == ["animator-2.png", "animator.png", "mine.png"]


def test_train_ch3_runs_the_packages_loop_with_an_animator_per_epoch(in_tmp, capsys, monkeypatch):
    calls = []
    real_train = training.train

    def spy(*args, **kwargs):
        calls.append(kwargs["callbacks"][0])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    X, y = blobs()
    torch.manual_seed(0)
    train_iter, test_iter = d2l.load_array((X, y), 32), d2l.load_array((X, y), 100, is_train=False)
    net = nn.Linear(X.shape[1], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a learnt problem meets the book's expectations: no warning
        result = d2l.train_ch3(net, train_iter, test_iter, nn.CrossEntropyLoss(reduction="none"), 4,
                               torch.optim.SGD(net.parameters(), lr=0.1))  # fmt: skip
    assert result is None
    assert len(calls) == 1 and isinstance(calls[0].__self__, d2l.Animator)
    animator = calls[0].__self__
    assert [len(series) for series in animator.Y] == [4, 4, 4]  # train loss, train acc, test acc per epoch
    assert animator.Y[2][-1] == d2l.evaluate_accuracy(net, test_iter) > 0.9
    assert capsys.readouterr().out == f"figure saved to {in_tmp / 'train_ch3.png'}\n"
    assert (in_tmp / "train_ch3.png").read_bytes()[:8] == PNG_MAGIC


def test_train_ch3_warns_instead_of_asserting_when_below_the_books_expectations(in_tmp):
    X, y = blobs(shuffle_labels=True)  # nothing to learn: accuracy stays near 0.1
    train_iter = ArrayLoader((X, y), 50, shuffle=True, seed=0)
    net = nn.Linear(X.shape[1], 10)
    with pytest.warns(UserWarning, match=r"after 2 epochs: train loss .* test acc 0\.\d+ \(the book expects > 0\.7\)"):
        d2l.train_ch3(net, train_iter, train_iter, nn.CrossEntropyLoss(reduction="none"), 2,
                      torch.optim.SGD(net.parameters(), lr=0.01))  # fmt: skip
    assert (in_tmp / "train_ch3.png").exists()  # the learner keeps the figure


def test_train_ch3_stops_a_diverging_run_with_training_diverged(in_tmp):
    X, y = blobs()
    W = torch.normal(0, 0.01, size=(X.shape[1], 10), requires_grad=True)

    def net(X):  # the book's naive softmax: exp overflows once the weights blow up
        e = torch.exp(X @ W)
        return e / e.sum(1, keepdim=True)

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y])

    train_iter = ArrayLoader((100 * X, y), 50, shuffle=True, seed=0)
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        d2l.train_ch3(net, train_iter, train_iter, cross_entropy, 3, lambda n: d2l.sgd([W], 100.0, n))


def test_zero_epochs_train_nothing_and_warn_of_nothing(in_tmp):
    # the book's functions carry no range checks (the command line's config validates its flags once)
    X, y = blobs(n=40)
    net = nn.Linear(X.shape[1], 10)
    before = net.weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d2l.train_ch3(net, ArrayLoader((X, y), 10), None, nn.CrossEntropyLoss(reduction="none"), 0,
                      torch.optim.SGD(net.parameters(), lr=0.1))  # fmt: skip
    assert torch.equal(net.weight, before)


@pytest.mark.parametrize("book_updater", [False, True], ids=["optimizer", "updater(batch_size)"])
def test_train_epoch_ch3_returns_mean_loss_and_accuracy(book_updater):
    X, y = blobs(n=90)
    net = nn.Linear(X.shape[1], 10)
    loss = nn.CrossEntropyLoss(reduction="none")
    # lr 0: the model does not move, so the epoch's means are those of the fixed model over all the data
    updater = (lambda n: d2l.sgd(net.parameters(), 0.0, n)) if book_updater else torch.optim.SGD(net.parameters(), 0)
    train_loss, train_acc = d2l.train_epoch_ch3(net, ArrayLoader((X, y), 40), loss, updater)
    with torch.no_grad():
        logits = net(X).double()
    assert train_loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert train_acc == pytest.approx((logits.numpy().argmax(1) == y.numpy()).mean())


def test_predict_ch3_titles_true_over_predicted_across_batches_and_saves(in_tmp, capsys):
    images = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([3, 0, 1, 3, 9, 3, 4, 5, 6, 7])

    def net(X):  # always predicts class 3, "dress"
        return F.one_hot(torch.full((len(X),), 3), 10).float()

    d2l.predict_ch3(net, ArrayLoader((images, labels), batch_size=4))  # n=6 spans two batches
    axes = d2l.plt.gcf().axes
    titles = [ax.get_title() for ax in axes]
    assert titles == [f"{TEXT_LABELS[t]}\ndress" for t in [3, 0, 1, 3, 9, 3]]
    assert [matplotlib.colors.to_hex(ax.title.get_color()) == "#ff0000" for ax in axes] == [
        False, True, True, False, True, False,
    ]  # fmt: skip
    assert capsys.readouterr().out == f"figure saved to {in_tmp / 'predict_ch3.png'}\n"
    assert (in_tmp / "predict_ch3.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.needs_data
def test_load_data_fashion_mnist_is_the_real_data_shuffled_as_torch_manual_seed_says():
    def first_batch(seed: int):
        torch.manual_seed(seed)
        train_iter, test_iter = d2l.load_data_fashion_mnist(64)
        return next(iter(train_iter))[1], next(iter(test_iter))[1]

    (train_a, test_a), (train_b, _), (train_c, _) = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(train_a, train_b) and not torch.equal(train_a, train_c)
    assert test_a.tolist() == t10k_labels()[:64].tolist()  # the test set keeps the file's order


def t10k_labels() -> np.ndarray:
    """The test labels straight from the IDX file: an 8-byte header, then one byte per label."""
    path = REAL_DATA / "t10k-labels-idx1-ubyte.gz"
    return np.frombuffer(gzip.decompress(path.read_bytes())[8:], dtype=np.uint8)


# --- the chapter as a learner types it -------------------------------------------------------------------------


def run_chapter(script: str, cwd: Path) -> tuple[str, str]:
    """Run a learner's script in a fresh interpreter in `cwd` with no display; return (stdout, stderr)."""
    env = {**os.environ, "MPLBACKEND": "Agg"}  # one compute thread, as conftest.py sets for every test process
    proc = subprocess.run(
        [sys.executable, str(CHAPTER / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # e.g. "the book expects": no warnings on the book's recipe
    return proc.stdout, proc.stderr


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not in output:\n{text}"
    return float(match.group(1))


def test_chapter_3_2_linear_regression_from_scratch_recovers_w_and_b(tmp_path):
    out, _ = run_chapter("ch3_2_linear_regression_scratch.py", tmp_path)
    losses = [float(v) for v in re.findall(r"epoch \d, loss (\S+)", out)]
    assert len(losses) == 3 and losses[0] > losses[-1] and losses[-1] < 1e-3  # noise variance / 2 = 5e-5
    assert number(r"max error in w: (\S+)", out) < 0.01
    assert abs(number(r"error in b: (\S+)", out)) < 0.01
    assert "a minibatch: (10, 2) (10, 1)" in out
    assert (tmp_path / "scatter.png").read_bytes()[:8] == PNG_MAGIC


def test_chapter_3_3_concise_linear_regression_recovers_w_and_b(tmp_path):
    out, _ = run_chapter("ch3_3_linear_regression_concise.py", tmp_path)
    assert "first minibatch: (10, 2) (10, 1)" in out
    losses = re.findall(r"epoch \d, loss (\S+)", out)
    assert len(losses) == 3 and float(losses[-1]) < 1e-3
    # the same mean squared error, once from nn.MSELoss on all the data, once from d2l.evaluate_loss per batch
    assert number(r"evaluate_loss: (\S+)", out) == pytest.approx(float(losses[-1]), rel=1e-3, abs=1e-6)
    assert number(r"max error in w: (\S+)", out) < 0.01
    assert abs(number(r"error in b: (\S+)", out)) < 0.01


@pytest.mark.needs_data
def test_chapter_3_5_reads_times_and_shows_fashion_mnist(tmp_path):
    out, _ = run_chapter("ch3_5_image_classification_dataset.py", tmp_path)
    assert "one batch: (256, 1, 28, 28) torch.float32 (256,) torch.int64" in out
    assert f"labels: {', '.join(TEXT_LABELS[i] for i in t10k_labels()[:18])}" in out
    assert "workers the book would start: 4" in out
    assert re.search(r"read 60000 training images in \d+\.\d\d sec", out)
    assert "resized: torch.Size([32, 1, 64, 64]) torch.float32 torch.Size([32]) torch.int64" in out
    assert (tmp_path / "examples.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@pytest.mark.needs_data
def test_chapter_3_6_softmax_from_scratch_reaches_the_books_accuracy(tmp_path):
    out, _ = run_chapter("ch3_6_softmax_regression_scratch.py", tmp_path)
    assert number(r"test accuracy before training: (\S+)", out) < 0.2  # chance is 0.1
    assert number(r"^test accuracy (\S+)$", out) > 0.8  # measured 0.83; the book shows about 0.83
    saved = [str(tmp_path / "train_ch3.png"), str(tmp_path / "predict_ch3.png")]
    assert re.findall(r"figure saved to (.*)", out) == saved
    for name in ("train_ch3.png", "predict_ch3.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@pytest.mark.needs_data
def test_chapter_3_7_concise_softmax_reaches_the_books_accuracy(tmp_path):
    out, _ = run_chapter("ch3_7_softmax_regression_concise.py", tmp_path)
    assert number(r"^test accuracy (\S+)$", out) > 0.8  # measured 0.83
    assert re.findall(r"figure saved to (.*)", out) == [str(tmp_path / "train_ch3.png")]
    assert (tmp_path / "train_ch3.png").read_bytes()[:8] == PNG_MAGIC
