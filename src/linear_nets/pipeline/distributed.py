"""Data-parallel training on torch.distributed, launched by `torchrun`: the chapter's minibatch SGD, the batch split.

    torchrun --nproc-per-node=2 -m linear_nets train softmax ...          (any `train` command, unchanged)

Minibatch SGD steps along the mean gradient of a batch B, g = (1/|B|) Σ_{i∈B} ∇l_i. Split B over P processes,
B = B_1 ∪ ... ∪ B_P, and the same g is

    g = (Σ_p Σ_{i∈B_p} ∇l_i) / (Σ_p |B_p|)

so each process sums the gradients of its share and counts its examples, one all-reduce adds both up over the
processes, and every process divides and takes the same step (each implementation its own way: `data_parallel`).
The weights start equal (one seed) and stay equal: no weight is ever sent. Every process draws the same order of
examples and keeps its share of every batch (`ArrayLoader(shard=...)`), so the result equals a one-process run with
the same (global) batch size, up to the order of float additions. Losses and accuracies are summed too (`World.sum`).
Only rank 0 prints and writes the run directory; a resume reads the checkpoint there and sends it to the others.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from linear_nets.errors import ConfigError, LinearNetsError
from linear_nets.threads import busy_cores, omp_threads, share_of_idle_cores

TIMEOUT_SECONDS = 120
"""How long a process waits for the others in one collective before it gives up: a process that died without the
launcher noticing (another machine) stops the rest within this time instead of hanging them."""

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun sets for every process it starts (with TORCHELASTIC_RESTART_COUNT and TORCHELASTIC_RUN_ID)."""


class PeerLost(LinearNetsError):
    """Another process of the group died or stopped answering: this one stops too, rather than wait forever."""


@dataclass(frozen=True)
class World:
    """The processes of a data-parallel fit, as this one sees them; `World()` is one process on its own.

    `rank` is 0 to `size` − 1 over every machine, `local_rank` and `local_size` on this one (`--nproc-per-node`);
    `restarts` counts torchrun's restarts of the group (> 0 means resume), `run_id` is its job id (`--rdzv-id`), and
    `launched` says torchrun started it (then the process group is used even for one process).

    Example:
        >>> World().sum(torch.ones(2))  # one process: the sum over processes is the tensor itself
        tensor([1., 1.])
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    restarts: int = 0
    run_id: str = ""
    launched: bool = False

    @property
    def leader(self) -> bool:
        """Rank 0: the process that prints and writes."""
        return self.rank == 0

    def sum(self, tensor: Tensor) -> Tensor:
        """Σ over the processes of `tensor` (an all-reduce, in place); return it. `PeerLost` when another process
        died or did not answer within `TIMEOUT_SECONDS`."""
        if self.launched:
            with _collective("adding up"):
                torch.distributed.all_reduce(tensor)
        return tensor

    def from_leader(self, compute: Callable[[], Any]) -> Any:
        """`compute()` run on rank 0 alone (opening or creating the run directory, reading a checkpoint); its result,
        or the one-line error it raised, on every process (pickled over the process group, never read from a file)."""
        box: list[tuple[str, Any] | None] = [None]
        if self.leader:
            try:
                box[0] = ("done", compute())
            except LinearNetsError as exc:
                if not self.launched:
                    raise
                box[0] = ("failed", (type(exc), str(exc)))
        if self.launched:
            with _collective("receiving rank 0's state"):
                torch.distributed.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "failed":
            cls, message = value
            try:
                error = cls(message)
            except TypeError:  # an error class with other arguments: the message is what counts
                error = LinearNetsError(message)
            raise error
        return value

    def gather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order."""
        if not self.launched:
            return [obj]
        boxes: list[Any] = [None] * self.size
        with _collective("comparing options"):
            torch.distributed.all_gather_object(boxes, obj)
        return boxes


ALONE = World()
"""One process on its own: the default `world` of every fit."""


def detect(environ: Mapping[str, str] = os.environ) -> World:
    """The `World` torchrun's environment describes; `World()` when not launched by torchrun.

    Example:
        >>> detect({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
        ...         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}).local_rank
        1
        >>> detect({}).launched
        False
    """
    if not all(name in environ for name in ENVIRONMENT):
        return World()
    try:
        rank, size, local_rank, local_size = (int(environ[name]) for name in ENVIRONMENT[:4])
        restarts = int(environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        numbers = {n: environ[n] for n in ENVIRONMENT[:4]}
        raise ConfigError(f"torchrun's environment is not numbers: {numbers}") from None
    if not (0 <= rank < size and 0 <= local_rank < local_size <= size):
        raise ConfigError(f"torchrun's environment is inconsistent: RANK {rank}, WORLD_SIZE {size}, "
                          f"LOCAL_RANK {local_rank}, LOCAL_WORLD_SIZE {local_size}")  # fmt: skip
    run_id = environ.get("TORCHELASTIC_RUN_ID", "")
    return World(rank, size, local_rank, local_size, restarts, run_id, launched=True)


def choose_threads(world: World = ALONE, cores: int | None = None, busy: int | None = None) -> int:
    """Torch threads for each of the `world.local_size` processes on this machine: the cores that no other process
    is using (`busy_cores`), shared out, at least one. Why: a linear model's products split into short parallel
    regions whose threads wait for each other, and a thread beside a busy core waits for its time slice (2 threads
    beside one busy core: 16.4 s against 8.2 s for 1; benchmarks/RESULTS.md).

    Example:
        >>> choose_threads(World(local_size=2), cores=16, busy=0), choose_threads(cores=2, busy=1)
        (8, 1)
    """
    return share_of_idle_cores(world.local_size, cores, busy_cores(world.local_size) if busy is None else busy)


def default_threads(world: World = ALONE, environ: Mapping[str, str] = os.environ) -> tuple[int, str]:
    """(torch threads, how they were chosen) when `--threads` is not given: `OMP_NUM_THREADS` where set (the usual
    knob; torchrun sets it to 1 unless told otherwise), else `choose_threads`.

    Example:
        >>> default_threads(environ={"OMP_NUM_THREADS": "3"})
        (3, 'OMP_NUM_THREADS')
    """
    given = omp_threads(environ)
    if given is not None:
        return given, "OMP_NUM_THREADS"
    return choose_threads(world), "chosen for the idle cores"


@contextlib.contextmanager
def started(world: World) -> Iterator[World]:
    """Join the process group for the fit (gloo on CPUs, NCCL on GPUs, one GPU per process) and leave it after a
    fit that succeeded; the launcher's SIGTERM (torchrun stops the others when one process fails) becomes `PeerLost`,
    one line. After a failure the group is not left and SIGTERM is ignored: the process is ending (the command line's
    only use)."""
    if not world.launched:
        yield world
        return
    import torch.distributed as dist

    # gloo for CPU tensors and, where torch has CUDA, NCCL for GPU ones: each collective goes by its tensor's device
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "cpu:gloo,cuda:nccl"
        torch.cuda.set_device(world.local_rank)
    previous = signal.signal(signal.SIGTERM, _stopped_by_launcher)
    joined = not dist.is_initialized()  # a caller that set up the group itself keeps it
    try:
        if joined:
            with _collective("joining the group"):
                timeout = datetime.timedelta(seconds=TIMEOUT_SECONDS)
                dist.init_process_group(backend, store=_attempt_store(world, timeout), rank=world.rank,
                                        world_size=world.size, timeout=timeout)  # fmt: skip
        yield world
    except BaseException:
        # A failed fit does not leave the group: leaving it while a peer is lost, or still inside a collective, can
        # wait forever (in CI torchrun killed the survivor 30 s later, before its one line; pytorch/torchtitan#1342
        # leaves only after success for the same reason). The process is ending with its own line: torchrun's
        # SIGTERM must not cut it short either, so it is ignored from here on.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise
    if joined and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
    signal.signal(signal.SIGTERM, previous)  # after leaving the group: a process is not killed halfway out of it


def _attempt_store(world: World, timeout: datetime.timedelta) -> Any:
    """torchrun's key-value store, with keys of their own for this attempt of this job: after a restart, the shared
    store sometimes gave the dead attempt's addresses (pytorch/pytorch#135712; 2 of 5 restarts, 0 of 8 with a prefix).
    """
    import torch.distributed as dist

    # torchrun's agent hosts the store; a launcher without one (the same variables set by hand) has rank 0 host it
    hosted = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" and world.leader
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=hosted,
                          timeout=timeout)  # fmt: skip
    global _JOINS
    _JOINS += 1  # a process that joins again (several fits in one script) must not read its last group's keys
    return dist.PrefixStore(f"linear-nets/{world.run_id}/attempt-{world.restarts}/join-{_JOINS}/", store)


_JOINS = 0


def _stopped_by_launcher(signum: int, frame: Any) -> None:
    raise PeerLost("stopped by torchrun (SIGTERM): another process of the group failed")


@contextlib.contextmanager
def _collective(doing: str) -> Iterator[None]:
    """Turn torch.distributed's errors (a peer's socket closed, a timeout) into one `PeerLost` line."""
    try:
        yield
    except LinearNetsError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:  # DistBackendError and DistNetworkError are RuntimeErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(". This is typically")[0]  # gloo's advice to read the other worker's log
        raise PeerLost(f"lost the other processes while {doing}: {first}") from None


# --- the same run on every process ------------------------------------------------------------------------------------


def check_same(world: World, values: Mapping[str, Any]) -> None:
    """Refuse to start unless every process was given the same `values` (options, and the data's fingerprint):
    every process compares all of them, so every process exits with the same `ConfigError` naming the difference."""
    everyone = world.gather(dict(values))
    for rank, theirs in enumerate(everyone):
        for name in sorted(set(values) | set(theirs)):
            mine, other = everyone[0].get(name), theirs.get(name)
            if mine != other:
                raise ConfigError(f"the processes were started differently: {name} is {mine!r} on rank 0 but "
                                  f"{other!r} on rank {rank}; give every process the same options and data")


def check_rows(world: World, rows: int) -> None:
    """Refuse a group with more processes than training rows (a process with no row at all cannot take a share).

    Example:
        >>> check_rows(World(size=4, launched=True), 3)
        Traceback (most recent call last):
        ...
        linear_nets.errors.ConfigError: 4 processes but only 3 training rows: start at most 3 (--nproc-per-node)
    """
    if world.size > rows:
        raise ConfigError(f"{world.size} processes but only {rows} training rows: start at most {rows} "
                          "(--nproc-per-node)")  # fmt: skip


def share(world: World, tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """This process's contiguous share of the rows of `tensors` (sizes differ by at most one).

    Example:
        >>> share(World(rank=1, size=2), (torch.arange(5),))
        (tensor([3, 4]),)
    """
    if world.size == 1:
        return tensors
    return tuple(t.tensor_split(world.size)[world.rank] for t in tensors)


# --- gradients summed over the processes ------------------------------------------------------------------------------


class SummedGradientStep:
    """The manual model's SGD step over every process's share of the batch (a `training.GradientStep`).

    With D = softmax(O) − onehot(y) on each share: ∂L/∂W = (Σ_p X_pᵀ D_p) / n and ∂L/∂b = (Σ_p Σ_i D_p,i) / n, with
    n = Σ_p n_p. One all-reduce carries [vec(X_pᵀ D_p), Σ_i D_p,i, n_p] from every process.
    """

    def __init__(self, model: Any, world: World) -> None:
        self.model, self.world = model, world

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor) -> None:
        from linear_nets.manual.softmax_regression import gradients

        share = y.shape[0]  # the share's mean gradient times its size: its summed gradient
        grad_W, grad_b = gradients(X.flatten(1), y, y_hat)  # flatten: a share may be empty
        grad_W, grad_b, n = _summed(self.world, grad_W * share, grad_b * share, share)
        self.model.apply_gradients(grad_W.div_(n), grad_b.div_(n))


def summed_gradient_updater(model: Any, world: World) -> Callable[[int], None]:
    """The scratch model's `updater(batch_size)` over every process: W.grad and b.grad hold the share's *summed*
    gradient (the loop backpropagates the summed loss); add them and the batch sizes up over the processes, then
    take the book's `sgd` step with the whole batch's size."""

    def updater(batch_size: int) -> None:
        grad_W, grad_b, n = _summed(world, model.W.grad, model.b.grad, batch_size)
        model.W.grad.copy_(grad_W)
        model.b.grad.copy_(grad_b)
        model.updater(int(n.item()))

    return updater


def _summed(world: World, grad_W: Tensor, grad_b: Tensor, count: int) -> tuple[Tensor, Tensor, Tensor]:
    """Σ_p of the processes' summed gradients and example counts, in one all-reduce of [vec(grad_W), grad_b, count]."""
    total = world.sum(torch.cat([grad_W.reshape(-1), grad_b, grad_b.new_tensor([count])]))
    return total[: grad_W.numel()].view_as(grad_W), total[grad_W.numel() : -1], total[-1]


def _sum_over_processes(batch: Any, bucket):  # unannotated: DDP refuses string annotations here
    """DDP communication hook: each process holds the mean gradient of its n_p examples; send n_p times it and n_p,
    and divide the sums: (Σ_p n_p g_p) / Σ_p n_p, the mean gradient of the whole batch."""
    mean = bucket.buffer()
    packed = torch.cat([mean * batch.count, mean.new_tensor([batch.count])])
    future = torch.distributed.all_reduce(packed, async_op=True).get_future()

    def divide(done: torch.futures.Future) -> Tensor:
        total = done.value()[0]
        return total[:-1] / total[-1]

    return future.then(divide)


def data_parallel(model: Any, world: World) -> tuple[Any, Any]:
    """The network and updater that train `model` over every process (its own `net` and `updater` in one process),
    by the kind of updater the loop knows (`training._make_step`): an optimiser (concise) gets DDP, a `GradientStep`
    (manual) and the book's `updater(batch_size)` (scratch) get their summed gradients all-reduced explicitly."""
    from linear_nets.training import GradientStep

    net, updater = model.net, model.updater
    if not world.launched:
        return net, updater
    if isinstance(updater, torch.optim.Optimizer):  # DDP, exchanging summed gradients (`_sum_over_processes`)
        from torch.nn.parallel import DistributedDataParallel

        batch = SimpleNamespace(count=0)  # the examples of this process's share of the current batch
        net.register_forward_pre_hook(lambda _module, args: setattr(batch, "count", args[0].shape[0]))
        device = next(net.parameters()).device
        ddp = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        ddp.register_comm_hook(batch, _sum_over_processes)
        return ddp, updater  # the optimiser keeps working on the same parameters
    if isinstance(updater, GradientStep):
        return net, SummedGradientStep(model, world)
    return net, summed_gradient_updater(model, world)


def fingerprint(data: Any, world: World) -> str | None:
    """SHA-256 of the training tensors of in-memory data (what `check_same` compares between processes), computed only
    under torchrun; None for a stream (its table's size, row count and schema checksum are compared instead)."""
    import hashlib

    if not world.launched or not hasattr(data, "train"):
        return None
    digest = hashlib.sha256()
    for tensor in data.train:
        digest.update(tensor.contiguous().numpy().data)
    return digest.hexdigest()
