"""Softmax regression on Fashion-MNIST, the book's recipe, timed against baselines in one process.

The recipe: 10 epochs, batch 256, lr 0.1, W ~ N(0, 0.01²), b = 0; train loss, train accuracy and test accuracy
computed every epoch, as d2l's `train_ch3` does. Timed (median of `--repeats`, one seed per repeat: 0, 1, 2, ...):
  - our three implementations through the real command-line path (`linear-nets train softmax --impl ...`: the
    parser, `train_softmax`, the data module's loaders, the one training loop); the time is the CLI's own
    training time (data loading is reported apart, since the baselines below start from data in memory);
  - (a) a bare hand-written in-memory autograd loop: float data in memory, a gather per batch, X @ W + b,
    `F.cross_entropy`, backward, SGD by hand, test accuracy each epoch as one product, no train metrics;
  - (b) the matrix products alone, on contiguous batches: forward X W, weight gradient Xᵀ G, input gradient G Wᵀ
    (W `[784, 10]` as the book lays it out);
  - (c) the book's per-sample loading: a `torch.utils.data.Dataset` turning each uint8 image into a float tensor
    in `__getitem__`, batched by a `DataLoader` with 0 and with 4 workers, feeding the concise model through the
    same loop (slow: one repeat each);
  - an ablation: the manual and concise implementations with each speed change undone, one at a time.
Prints markdown tables and the machine, and replaces the "## Softmax regression" sections of RESULTS.md.

Run: .venv/bin/python benchmarks/bench_softmax.py [--repeats 3] [--no-write] [--skip-dataloader] [--skip-ablation]
     [--accuracy-seeds 10]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from linear_nets import training
from linear_nets.atomic import atomic_write_text
from linear_nets.cli import build_parser
from linear_nets.cli.train_softmax import train_softmax
from linear_nets.concise.softmax_regression import SoftmaxRegression as ConciseSoftmaxRegression
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.fashion_mnist import FashionMNIST
from linear_nets.manual.softmax_regression import SoftmaxRegression as ManualSoftmaxRegression
from linear_nets.pipeline.fit import SOFTMAX_MODELS, as_one_batch
from linear_nets.softmax import stable_cross_entropy_and_softmax
from linear_nets.training import Accumulator, GradientStep, accuracy, train

sys.path.insert(0, str(Path(__file__).parent))  # the sibling script, however this one is started
from bench_data import PerSampleDataset, machine, replace_section

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Softmax regression: the book's recipe"
ABLATION_SECTION = "## Softmax regression: what each speed change bought"
EPOCHS, BATCH_SIZE, LR = 10, 256, 0.1
IMPLS = ("scratch", "manual", "concise")
IMPL_CLASSES = [(impl, SOFTMAX_MODELS[impl]) for impl in IMPLS]
SCRATCH = tempfile.TemporaryDirectory(prefix="bench-softmax-")  # removed when the process ends
LOAD_SECONDS: list[float] = []  # the CLI's data loading before each of our runs (not in its training time)
NOTES = """Where the time goes (profiled with `torch.profiler`, and the per-batch table above):
- The products: the book's layouts are the slow ones on this CPU. O = X W with W `[784, 10]` row-major and its
  weight gradient Xᵀ G take longer than nn.Linear's X Wᵀ and Gᵀ X (the weight gradient about twice as long). The
  manual model stores W column-major to get the fast layouts (and a class-major O); concise gets them from
  nn.Linear; scratch and the bare loop keep the book's.
- The gather: `X[index]` (advanced indexing, the bare loop's) is slower than `index_select`, which the loader uses
  (the ablation row), on uint8 rows converted per batch (no faster with a float copy of the dataset, 4x larger).
- The fixed cost of a step (one-example batches): the manual model pays about what the bare loop pays; concise and
  scratch pay about twice that: `nn.Module` calls, autograd's graph and engine and, in concise, `torch.optim.SGD`'s
  `zero_grad` and `step`. The optimisers update the two tensors one by one (`foreach=False`; batching them into
  foreach kernels costs more than it saves). Handing backward the mean's gradient 1/n directly (the removed
  `LossSeed`: no mean node) was a trick of about 1% of an epoch (issue 25): the loop now takes `l.mean().backward()`,
  as the book does, and the row measures the trick. The data are checked once per fit, on whole tensors (labels,
  shapes); a model checks its inputs at its door, `predict` and `predict_proba`, not in each training forward.
- So concise, with twice the bare loop's fixed cost per step, is faster than it because its products run in the
  fast layouts and its gather is `index_select`.
- Summing the loss and the metric per batch is ~10 small torch calls per batch; the loop keeps the batch outputs
  and reduces them every 16,384 examples.
- Two threads help on an idle machine; when another process keeps a core busy, every parallel region waits for
  it and a run can take 10x longer: use `--threads 1` there."""


class Timing:
    """Wall and CPU seconds and test accuracy of each repeat of one measurement."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.accs: list[float] = []

    def time(self, fn: Callable[[], float | tuple[float, float] | None]) -> None:
        """Run `fn` once; it returns the test accuracy, or (its own seconds, accuracy), or None."""
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if isinstance(result, tuple):
            wall, result = result
        self.walls.append(wall)
        self.cpus.append(cpu)
        if result is not None:
            self.accs.append(result)

    @property
    def seconds(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    def accuracy(self) -> str:
        if not self.accs:
            return "-"
        if len(self.accs) == 1:
            return f"{self.accs[0]:.4f}"
        return f"{statistics.median(self.accs):.4f} (min {min(self.accs):.4f})"


# --- our implementations, through the CLI ---------------------------------------------------------------------------


def cli_run(impl: str, seed: int, extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """`linear-nets train softmax --impl IMPL --seed SEED` as the CLI runs it; (training seconds, test accuracy)."""
    argv = ["train", "softmax", "--impl", impl, "--seed", str(seed), *extra]
    args = build_parser().parse_args(argv)
    if hasattr(args, "out"):  # the CLI records a run directory: put it in a scratch directory, not in ./runs
        args.out = tempfile.mkdtemp(prefix=f"{impl}-{seed}-", dir=SCRATCH.name)  # empty: the CLI accepts it
    run = train_softmax(args, out=io.StringIO())
    LOAD_SECONDS.append(run.load_seconds)
    return run.fit.seconds, run.fit.test_accuracy


# --- the baselines --------------------------------------------------------------------------------------------------


def bare_loop(
    X: torch.Tensor,
    y: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    seed: int,
    batch_size: int = BATCH_SIZE,
    epochs: int = EPOCHS,
) -> float:
    """(a) The loop one writes by hand: in memory, autograd, SGD by hand, test accuracy per epoch, nothing else."""
    generator = torch.Generator().manual_seed(seed)
    W = torch.normal(0.0, 0.01, size=(784, 10), generator=generator).requires_grad_()
    b = torch.zeros(10, requires_grad=True)
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=generator)
        for start in range(0, X.shape[0], batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(X[index] @ W + b, y[index])
            loss.backward()
            with torch.no_grad():
                W -= LR * W.grad
                b -= LR * b.grad
                W.grad.zero_()
                b.grad.zero_()
        with torch.no_grad():
            test_acc = ((X_test @ W + b).argmax(dim=1) == y_test).float().mean().item()
    return test_acc


def matmuls_only(X: torch.Tensor) -> None:
    """(b) Per batch: forward X W, weight gradient Xᵀ G, input gradient G Wᵀ; no data movement, no update."""
    W = torch.normal(0.0, 0.01, size=(784, 10))
    G = torch.randn(BATCH_SIZE, 10)
    for _ in range(EPOCHS):
        for start in range(0, X.shape[0], BATCH_SIZE):
            X_batch = X[start : start + BATCH_SIZE]
            G_batch = G[: X_batch.shape[0]]
            X_batch @ W
            X_batch.T @ G_batch
            G_batch @ W.T


def dataloader_run(train_set: FashionMNIST, test_set: FashionMNIST, workers: int, seed: int) -> float:
    """(c) The book's per-sample loading feeding the concise model through the same training loop."""
    generator = torch.Generator().manual_seed(seed)

    def loader(split: FashionMNIST, shuffle: bool) -> torch.utils.data.DataLoader:
        dataset = PerSampleDataset(split.images, split.labels)
        return torch.utils.data.DataLoader(
            dataset, BATCH_SIZE, shuffle=shuffle, num_workers=workers, generator=generator if shuffle else None
        )

    model = ConciseSoftmaxRegression(lr=LR, generator=torch.Generator().manual_seed(seed))
    history = train(model.net, loader(train_set, True), loader(test_set, False), model.loss, EPOCHS, model.updater)
    return history.epochs[-1].test_accuracy


# --- the ablation: the manual and concise implementations with one speed change undone ------------------------------


class AdvancedIndexLoader(ArrayLoader):
    """The loader before the speed work: a batch gathered with `t[index]` (advanced indexing), not `index_select`."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.randperm(self.num_examples, generator=self.generator) if self.shuffle else None
        for start in range(0, self.num_examples, self.batch_size):
            if order is None:
                batch = tuple(t[start : start + self.batch_size] for t in self.tensors)
            else:
                batch = tuple(t[order[start : start + self.batch_size]] for t in self.tensors)
            yield (batch[0].to(torch.float32).div_(255.0), *batch[1:])


class RowMajorManual(ManualSoftmaxRegression):
    """W stored row-major `[784, 10]`, O = addmm(b, X, W), W += -lr Xᵀ G: the book's layout for the products."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.W = self.W.contiguous()

    def net(self, X: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b, X.reshape(-1, self.num_inputs), self.W)


class SharedSoftmaxManual(ManualSoftmaxRegression):
    """The removed speed trick: `loss` keeps softmax(O) and the `step` on the same logits reuses it, subtracting the
    one-hot in place (`scatter_add_`) instead of computing its own softmax."""

    def loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss, self._probs = stable_cross_entropy_and_softmax(y_hat, y)
        return loss

    def step(self, X: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor, weights=None) -> None:
        G = self._probs
        G.scatter_add_(1, y.unsqueeze(1), torch.full((y.shape[0], 1), -1.0)).div_(y.shape[0])
        self.apply_gradients((G.T @ X.reshape(-1, self.num_inputs)).T, G.sum(dim=0))


def per_batch_dispatch_train_epoch(net, train_iter, loss, updater, metric=accuracy, *, epoch=1, reduce=None):
    """Our loop before the speed work: the kind of updater decided per batch (isinstance on a Protocol)."""
    loss_sum, metric_sum, count = torch.zeros(()), torch.zeros(()), 0
    for X, y in train_iter:
        if isinstance(updater, GradientStep):
            with torch.no_grad():
                y_hat = net(X)
                batch_loss = loss(y_hat, y)
        else:
            y_hat = net(X)
            batch_loss = loss(y_hat, y)
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad(set_to_none=True)
            batch_loss.mean().backward()
            updater.step()
        elif isinstance(updater, GradientStep):
            updater.step(X, y, y_hat)
        with torch.no_grad():
            loss_sum += batch_loss.detach().sum()
            metric_sum += metric(y_hat.detach(), y)
        count += y.shape[0]
    return loss_sum.item() / count, metric_sum.item() / count


def seeded_backward_train_epoch(net, train_iter, loss, updater, metric=accuracy, *, epoch=1, reduce=None):
    """Our loop with the removed `LossSeed` trick: `l.backward(1/n)` with a cached seed instead of
    `l.mean().backward()` (no mean and no backward node for it per batch)."""
    totals, seeds = training._Totals(metric), {}
    for X, y in train_iter:
        y_hat = net(X)
        batch_loss = loss(y_hat, y)
        updater.zero_grad(set_to_none=True)
        seed = seeds.get(batch_loss.shape)
        if seed is None:
            seed = seeds[batch_loss.shape] = torch.full_like(batch_loss, 1.0 / batch_loss.numel())
        batch_loss.backward(seed)
        updater.step()
        totals.add(y_hat.detach(), y, batch_loss.detach())
    return totals.means()


class ForeachConcise(ConciseSoftmaxRegression):
    """`torch.optim.SGD` as torch defaults it: the update batched into foreach kernels."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for group in self.updater.param_groups:
            group["foreach"] = None


def d2l_train_epoch(net, train_iter, loss, updater, metric=accuracy, *, epoch=1, reduce=None):
    """d2l's `train_epoch_ch3`: an `Accumulator` of Python floats, so three `.item()` reads per batch."""
    totals = Accumulator(3)
    for X, y in train_iter:
        y_hat = net(X)
        batch_loss = loss(y_hat, y)
        updater.step(X, y, y_hat)
        totals.add(float(batch_loss.sum()), float(metric(y_hat, y)), y.numel())
    return totals[0] / totals[2], totals[1] / totals[2]


def ablation_run(
    model_class: type,
    loader_class: type,
    train_set: FashionMNIST,
    test_set: FashionMNIST,
    seed: int,
    epoch_fn: Callable | None = None,
    one_test_batch: bool = True,
) -> float:
    """The CLI's training (same loaders, one test batch, same loop) with one piece swapped for its old version."""
    train_iter = loader_class((train_set.images, train_set.labels), BATCH_SIZE, shuffle=True, seed=seed)
    test_iter = loader_class((test_set.images, test_set.labels), BATCH_SIZE)
    model = model_class(784, 10, lr=LR, generator=torch.Generator().manual_seed(seed))
    original = training.train_epoch
    training.train_epoch = epoch_fn or original  # train() looks train_epoch up in its module at each call
    try:
        test = as_one_batch(test_set.images, test_set.labels, None) if one_test_batch else test_iter
        # every row with the bench's threads: left to the load (threads=None), rows drew 1 or 2 threads by chance
        history = training.train(model.net, train_iter, test, model.loss, EPOCHS, model.updater,
                                 threads=torch.get_num_threads())
    finally:
        training.train_epoch = original
    return history.epochs[-1].test_accuracy


def ablation_table(train_set: FashionMNIST, test_set: FashionMNIST, seeds: range) -> str:
    """Time each implementation as shipped and with one change undone, interleaved per seed; a markdown table."""
    M, C = ManualSoftmaxRegression, ConciseSoftmaxRegression
    variants = [  # (implementation, what, the change to `ablation_run`'s defaults); "as shipped" first
        ("manual", "manual, as shipped", {"model_class": M}),
        ("manual", "batch gathered with `t[index]` instead of `index_select`", {"loader_class": AdvancedIndexLoader}),
        ("manual", "W row-major: O = X W and Xᵀ G in the book's layout", {"model_class": RowMajorManual}),
        ("manual", "loss keeps softmax(O) for the step (the removed `_saved` trick)",
         {"model_class": SharedSoftmaxManual}),
        ("manual", "test set in 40 batches of 256 instead of one", {"one_test_batch": False}),
        ("manual", "loop as before: updater kind and sums per batch", {"epoch_fn": per_batch_dispatch_train_epoch}),
        ("manual", "d2l's loop: `Accumulator` of floats, `.item()` per batch", {"epoch_fn": d2l_train_epoch}),
        ("concise", "concise, as shipped", {"model_class": C}),
        ("concise", "`l.backward(1/n)` with a cached seed (the removed `LossSeed`)",
         {"epoch_fn": seeded_backward_train_epoch}),
        ("concise", "`torch.optim.SGD` with torch's default foreach kernels", {"model_class": ForeachConcise}),
    ]
    timings = {what: Timing() for _, what, _ in variants}
    for seed in seeds:  # interleaved, so a slow phase of the machine spreads over every row
        for impl, what, change in variants:
            kwargs = {"model_class": M if impl == "manual" else C, "loader_class": ArrayLoader, **change}
            timings[what].time(
                lambda kw=kwargs, s=seed: ablation_run(train_set=train_set, test_set=test_set, seed=s, **kw)
            )
    threads = torch.get_num_threads()
    if threads > 1:
        what = f"manual: 1 torch thread instead of {threads} (through the CLI)"
        variants.append(("manual", what, {}))
        timings[what] = Timing()
        for seed in seeds:
            timings[what].time(lambda seed=seed: cli_run("manual", seed, ("--threads", "1")))
        torch.set_num_threads(threads)
    lines = ["| implementation (train() directly) | seconds (median) | vs as shipped |", "|---|---:|---:|"]
    for impl, what, _ in variants:
        shipped = timings[f"{impl}, as shipped"].seconds
        lines.append(f"| {what} | {timings[what].seconds:.3f} | {timings[what].seconds - shipped:+.3f} s |")
    return (
        "Each row undoes one change; the difference is what that change buys in that implementation "
        f"(same recipe, median of {len(seeds)}, rows interleaved per seed).\n\n" + "\n".join(lines)
    )


# --- what one batch costs: the products by memory layout, and the fixed cost of a step -------------------------------


def microseconds_per_batch(fn: Callable[[], None], batches: int, passes: int = 7) -> float:
    """Median over `passes` of the seconds of `fn()`, which runs `batches` batches, per batch, in µs."""
    timing = Timing()
    for _ in range(passes):
        timing.time(fn)
    return timing.seconds / batches * 1e6


def product_costs(X: torch.Tensor) -> list[tuple[str, float]]:
    """µs per batch of 256 of the two products each model needs, in the layouts the models use."""
    batches = [X[start : start + BATCH_SIZE] for start in range(0, X.shape[0] - BATCH_SIZE + 1, BATCH_SIZE)]
    generator = torch.Generator().manual_seed(0)
    W_book = torch.randn(784, 10, generator=generator)  # [d, q] row-major: the book, scratch, the bare loop
    W_linear = W_book.T.contiguous()  # [q, d] row-major: nn.Linear's weight; the manual model's W is its transpose
    b, G = torch.zeros(10), torch.randn(BATCH_SIZE, 10, generator=generator)

    def over_batches(product: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            for batch in batches:
                product(batch)

        return run

    products = [
        ("forward O = X W, W [d, q] row-major (book, scratch, bare loop)", lambda Xb: torch.addmm(b, Xb, W_book)),
        ("forward O = X Wᵀ, nn.Linear's W [q, d] (concise)", lambda Xb: torch.addmm(b, Xb, W_linear.T)),
        ("forward Oᵀ = W Xᵀ, class-major output (manual)", lambda Xb: torch.addmm(b[:, None], W_linear, Xb.T)),
        ("weight gradient Xᵀ G [d, q] (book, scratch, bare loop)", lambda Xb: Xb.T @ G),
        ("weight gradient Gᵀ X [q, d] (concise; manual's in-place update)", lambda Xb: G.T @ Xb),
    ]
    return [(what, microseconds_per_batch(over_batches(product), len(batches))) for what, product in products]


def step_overheads(train_set: FashionMNIST, steps: int = 2000) -> list[tuple[str, float]]:
    """µs per step of one-example batches, where the products cost nearly nothing: the loop's fixed cost."""
    images, labels = train_set.images[:steps], train_set.labels[:steps]
    X = images.reshape(-1, 784).to(torch.float32) / 255

    def ours(model_class: type) -> Callable[[], None]:
        def run() -> None:
            model = model_class(784, 10, lr=LR, generator=torch.Generator().manual_seed(0))
            loader = ArrayLoader((images, labels), 1, shuffle=True, seed=0)
            training.train_epoch(model.net, loader, model.loss, model.updater)

        return run

    def bare() -> None:
        bare_loop(X, labels, X[:1], labels[:1], 0, batch_size=1, epochs=1)

    rows = [(f"{impl} (`train_epoch`: loader, step, sums)", ours(model_class)) for impl, model_class in IMPL_CLASSES]
    rows.append(("(a) bare loop", bare))
    return [(what, microseconds_per_batch(run, steps)) for what, run in rows]


def costs_table(train_set: FashionMNIST, X: torch.Tensor) -> str:
    lines = ["| what | µs per batch (median of 7 passes) |", "|---|---:|"]
    lines += [f"| {what} | {us:.1f} |" for what, us in product_costs(X)]
    lines += [f"| one-example batches: {what} | {us:.1f} |" for what, us in step_overheads(train_set)]
    return (
        f"The two products of a batch of {BATCH_SIZE} in each layout ({torch.get_num_threads()} threads, real "
        "images), and the fixed cost of a training step, measured with one-example batches (2,000 steps):\n\n"
        + "\n".join(lines)
    )


# --- report ---------------------------------------------------------------------------------------------------------


def table(rows: list[tuple[str, Timing]], bare: Timing, products: Timing) -> str:
    lines = [
        "| what | seconds (median) | CPU s | test acc (median over seeds) | × bare loop (a) | × products (b) |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for what, t in rows:
        lines.append(
            f"| {what} | {t.seconds:.3f} | {t.cpu:.3f} | {t.accuracy()} | {t.seconds / bare.seconds:.2f} "
            f"| {t.seconds / products.seconds:.2f} |"
        )
    return "\n".join(lines)


def verdicts(ours: dict[str, Timing], bare: Timing, products: Timing) -> str:
    fastest = min(ours, key=lambda impl: ours[impl].seconds)
    checks = [
        (f"fastest ({fastest}) ≤ 0.75 × bare loop", ours[fastest].seconds / bare.seconds, 0.75),
        (f"fastest ({fastest}) ≤ 1.5 × matrix products", ours[fastest].seconds / products.seconds, 1.5),
        ("concise ≤ 1.0 × bare loop", ours["concise"].seconds / bare.seconds, 1.0),
    ]
    lines = [f"- {'met' if ratio <= limit else 'MISSED'}: {what} ({ratio:.2f})" for what, ratio, limit in checks]
    for impl, t in ours.items():
        acc = statistics.median(t.accs)
        lines.append(f"- {'met' if acc >= 0.83 else 'MISSED'}: {impl} test accuracy ≥ 0.83 (median {acc:.4f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    parser.add_argument("--skip-dataloader", action="store_true", help="skip the slow per-sample DataLoader runs")
    parser.add_argument("--skip-ablation", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for every row (default: torch's, the CPU count)"
    )
    parser.add_argument("--accuracy-seeds", type=int, default=10, help="seeds for the accuracy spread (0: skip)")
    args = parser.parse_args(argv)
    seeds = range(args.repeats)
    started = time.perf_counter()
    if args.threads is not None:  # on a busy machine one thread is far steadier: parallel regions wait for a core
        torch.set_num_threads(args.threads)

    train_set, test_set = FashionMNIST("train"), FashionMNIST("test")
    X = train_set.images.reshape(-1, 784).to(torch.float32) / 255
    X_test = test_set.images.reshape(-1, 784).to(torch.float32) / 255
    bare_loop(X[:2560], train_set.labels[:2560], X_test, test_set.labels, 0)  # warm up MKL and the allocator

    bare, products = Timing(), Timing()
    ours = {impl: Timing() for impl in IMPLS}
    for seed in seeds:  # interleaved, so slow phases of a busy machine spread over every row
        bare.time(lambda seed=seed: bare_loop(X, train_set.labels, X_test, test_set.labels, seed))
        products.time(lambda: matmuls_only(X))
        for impl in IMPLS:
            ours[impl].time(lambda impl=impl, seed=seed: cli_run(impl, seed))
        print(f"repeat {seed + 1}/{args.repeats} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    rows = [(f"`train softmax --impl {impl}`", ours[impl]) for impl in IMPLS]
    rows += [("(a) bare in-memory autograd loop, no train metrics", bare), ("(b) matrix products alone", products)]

    if not args.skip_dataloader:
        for workers in (0, 4):
            t = Timing()
            t.time(lambda workers=workers: dataloader_run(train_set, test_set, workers, 0))
            rows.append((f"(c) per-sample Dataset + DataLoader, {workers} workers (1 run, seed 0)", t))
            print(f"DataLoader with {workers} workers done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    body = (
        f"10 epochs, batch 256, lr 0.1; train loss, train accuracy and test accuracy every epoch. Median of "
        f"{args.repeats} runs with seeds {', '.join(map(str, seeds))} (one each); CPU s counts all threads. "
        f"Our rows are the CLI's training time; before it, the CLI loads the data (median "
        f"{statistics.median(LOAD_SECONDS):.2f} s, not counted: the baselines start from data in memory).\n\n"
        f"{table(rows, bare, products)}\n\n{verdicts(ours, bare, products)}\n\n"
        f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`benchmarks/bench_softmax.py` in {time.perf_counter() - started:.0f} s."
    )
    print(body)
    sections = [(SECTION, body)]

    if not args.skip_ablation:
        ablation = ablation_table(train_set, test_set, seeds) + "\n\n" + costs_table(train_set, X) + "\n\n" + NOTES
        print("\n" + ablation)
        sections.append((ABLATION_SECTION, ablation))

    if args.accuracy_seeds:
        accs = []
        for seed in range(args.accuracy_seeds):
            accs.append(ablation_run(ManualSoftmaxRegression, ArrayLoader, train_set, test_set, seed))
        spread = (
            f"Test accuracy after 10 epochs depends on the seed (the last SGD steps move it by ~0.01): over seeds "
            f"0-{args.accuracy_seeds - 1}, the manual implementation (the three follow the same trajectory for one "
            f"seed) reaches mean {statistics.mean(accs):.4f}, min {min(accs):.4f}, max {max(accs):.4f}; "
            f"{sum(a >= 0.83 for a in accs)} of {len(accs)} seeds reach 0.83."
        )
        print("\n" + spread)
        sections[0] = (SECTION, sections[0][1] + "\n\n" + spread)

    if not args.no_write:
        text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
        for heading, section_body in sections:
            text = replace_section(text, heading, section_body)
        atomic_write_text(RESULTS, text)
        print(f"\nupdated {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
