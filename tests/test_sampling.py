"""ArrayLoader's sampling modes: batch counts and sizes, coverage of an epoch, fill without repeats, seeded draws,
the 1/e never seen by an epoch drawn with replacement, and the errors a user can cause."""

from __future__ import annotations

import math

import pytest
import torch

from linear_nets.data.batches import SAMPLING_MODES, ArrayLoader
from linear_nets.errors import ConfigError


def ids_loader(n: int, batch_size: int, sampling: str, seed: int = 0, **kwargs) -> ArrayLoader:
    """A loader over (features, ids): the ids say which examples each batch holds."""
    X = torch.arange(n, dtype=torch.float32).unsqueeze(1) * 10
    return ArrayLoader((X, torch.arange(n)), batch_size, shuffle=True, seed=seed, sampling=sampling, **kwargs)


def epoch_ids(loader: ArrayLoader) -> list[list[int]]:
    return [yb.tolist() for _, yb in loader]


def test_the_modes():
    assert SAMPLING_MODES == ("shuffle", "shuffle-drop-last", "shuffle-fill", "with-replacement")


@pytest.mark.parametrize(
    ("sampling", "n", "batch_size", "sizes"),
    [
        ("shuffle", 10, 4, [4, 4, 2]),
        ("shuffle", 8, 4, [4, 4]),
        ("shuffle", 3, 5, [3]),
        ("shuffle-drop-last", 10, 4, [4, 4]),
        ("shuffle-drop-last", 8, 4, [4, 4]),
        ("shuffle-drop-last", 5, 5, [5]),
        ("shuffle-fill", 10, 4, [4, 4, 4]),
        ("shuffle-fill", 8, 4, [4, 4]),
        ("shuffle-fill", 5, 5, [5]),
        ("with-replacement", 10, 4, [4, 4, 4]),
        ("with-replacement", 8, 4, [4, 4]),
        ("with-replacement", 3, 5, [5]),
    ],
)
def test_batch_count_and_sizes(sampling, n, batch_size, sizes):
    loader = ids_loader(n, batch_size, sampling)
    for _ in range(2):
        assert [len(b) for b in epoch_ids(loader)] == sizes
    assert len(loader) == len(sizes)


@pytest.mark.parametrize("sampling", ["shuffle", "shuffle-drop-last"])
def test_each_example_exactly_once_per_epoch_minus_the_dropped_rest(sampling):
    n, bs = 103, 10
    loader = ids_loader(n, bs, sampling, seed=3)
    expected = n if sampling == "shuffle" else n - n % bs
    orders = []
    for _ in range(3):
        seen = [i for b in epoch_ids(loader) for i in b]
        assert len(seen) == len(set(seen)) == expected
        orders.append(seen)
    assert orders[0] != orders[1]
    if sampling == "shuffle-drop-last":  # a different rest is dropped each epoch, so nobody is always left out
        assert set(orders[0]) != set(orders[1]) and set().union(*orders) == set(range(n))


def test_batches_keep_their_rows_together():
    for sampling in SAMPLING_MODES:
        for Xb, yb in ids_loader(23, 5, sampling, seed=1):
            torch.testing.assert_close(Xb[:, 0], yb.float() * 10)


@pytest.mark.parametrize(("n", "batch_size"), [(10, 4), (11, 10), (1001, 100), (7, 7)])
def test_fill_tops_up_the_last_batch_without_repeats(n, batch_size):
    loader = ids_loader(n, batch_size, "shuffle-fill", seed=n)
    fills = set()
    for _ in range(30):
        batches = epoch_ids(loader)
        assert all(len(b) == batch_size for b in batches)
        assert all(len(set(b)) == len(b) for b in batches)  # no example twice in a batch, the filled one included
        seen = [i for b in batches for i in b]
        assert set(seen) == set(range(n))  # everyone once...
        rest = n % batch_size
        if rest:
            fill = batches[-1][rest:]
            assert set(fill).isdisjoint(batches[-1][:rest])  # ...and the fill comes from the others
            fills.update(fill)
            assert len(seen) - len(set(seen)) == batch_size - rest
    if n % batch_size:
        assert len(fills) > batch_size - n % batch_size  # random: not the same fill every epoch


def test_with_replacement_repeats_and_misses():
    loader = ids_loader(1000, 50, "with-replacement", seed=0)
    seen = [i for b in epoch_ids(loader) for i in b]
    assert len(seen) == 1000 and 0 < len(set(seen)) < 1000
    assert all(0 <= i < 1000 for i in seen)


@pytest.mark.parametrize("sampling", SAMPLING_MODES)
def test_same_seed_same_batches_and_a_restored_generator_resumes(sampling):
    loader = ids_loader(50, 8, sampling, seed=4)
    first = [epoch_ids(loader) for _ in range(3)]
    again = ids_loader(50, 8, sampling, seed=4)
    assert [epoch_ids(again) for _ in range(3)] == first
    other = ids_loader(50, 8, sampling, seed=5)
    assert epoch_ids(other) != first[0]

    resumed = ids_loader(50, 8, sampling, seed=4)
    epoch_ids(resumed)
    state = resumed.generator.get_state()  # what a checkpoint saves after epoch 1
    fresh = ids_loader(50, 8, sampling, seed=999)
    fresh.generator.set_state(state)
    assert [epoch_ids(fresh) for _ in range(2)] == first[1:]


def test_shuffle_is_todays_behaviour_bit_for_bit():
    """The default mode draws exactly one randperm per epoch from the generator, as before the modes existed."""
    n, bs = 37, 8
    gen = torch.Generator().manual_seed(11)
    expected = [torch.randperm(n, generator=gen).tolist() for _ in range(3)]
    for kwargs in ({}, {"sampling": "shuffle"}):
        loader = ArrayLoader((torch.arange(n),), bs, shuffle=True, seed=11, **kwargs)
        assert [torch.cat(list(b[0] for b in loader)).tolist() for _ in range(3)] == expected


def test_never_seen_fraction_with_replacement_is_one_over_e():
    n = 100_000
    loader = ArrayLoader((torch.arange(n),), 100, shuffle=True, seed=0, sampling="with-replacement")
    seen = torch.zeros(n, dtype=torch.bool)
    for (ids,) in loader:
        seen[ids] = True
    assert abs((1 - seen.float().mean().item()) - math.exp(-1)) < 0.01


@pytest.mark.parametrize("sampling", ["random", "Shuffle", "", None, 3])
def test_unknown_mode_names_the_argument_and_the_choices(sampling):
    with pytest.raises(
        ConfigError, match="sampling must be one of shuffle, shuffle-drop-last, shuffle-fill, with-replacement"
    ):
        ArrayLoader((torch.zeros(4),), 2, shuffle=True, sampling=sampling)


@pytest.mark.parametrize("fit", ["softmax", "linreg"])
def test_a_batch_larger_than_the_data_is_refused_by_the_fit_where_its_sampling_cannot_make_it(fit):
    from linear_nets.pipeline.config import LinregConfig, SoftmaxConfig
    from linear_nets.pipeline.fit import Dataset, fit_linreg, fit_softmax

    X, y = torch.rand(3, 2), torch.tensor([0, 1, 0])

    def run(sampling: str) -> None:
        if fit == "softmax":
            fit_softmax(SoftmaxConfig(batch_size=5, sampling=sampling, epochs=1), Dataset((X, y)))
        else:
            fit_linreg(LinregConfig(batch_size=5, sampling=sampling, epochs=1), (X, y.float()))

    with pytest.raises(ConfigError, match=r"batch_size 5 > 3 examples .* no batch at all") as e:
        run("shuffle-drop-last")
    assert e.value.fields == ("sampling", "batch_size")
    with pytest.raises(ConfigError, match="cannot fill a batch of 5 from 3 examples"):
        run("shuffle-fill")
    run("with-replacement")  # draws its 5 from 3 examples with repeats, as it says


def test_drop_last_and_modes_after_a_shuffle_do_what_they_say():
    # the same thing twice is fine, and shuffle=False keeps working as before
    assert len(ArrayLoader((torch.zeros(5),), 2, shuffle=True, drop_last=True, sampling="shuffle-drop-last")) == 2
    assert len(ArrayLoader((torch.zeros(5),), 2, shuffle=False)) == 3


def test_empty_data_gives_no_batches():
    assert list(ArrayLoader((torch.zeros(0, 2),), 4, shuffle=True, sampling="with-replacement", seed=0)) == []
