"""ArrayLoader: batch counts, every example once per epoch, seeded shuffles, uint8 -> [0, 1], resize, bad input."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

from linear_nets.data.batches import ArrayLoader


def images_and_ids(n: int, side: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images whose first pixel encodes their index, so batches can be traced back to examples."""
    gen = torch.Generator().manual_seed(n)
    X = torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8, generator=gen)
    X[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return X, torch.arange(n)


@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last", "expected"),
    [(10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3), (2, 5, False, 1), (2, 5, True, 0)],
)
def test_len_matches_the_batches_yielded(n, batch_size, drop_last, expected):
    loader = ArrayLoader(images_and_ids(n), batch_size, drop_last=drop_last, shuffle=True, seed=0)
    sizes = [len(y) for _, y in loader]
    assert len(loader) == expected == len(sizes)
    assert all(s == batch_size for s in sizes[:-1])
    if drop_last and sizes:
        assert sizes[-1] == batch_size


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_example_exactly_once_per_epoch_and_pairs_kept(shuffle):
    X, y = images_and_ids(50)
    loader = ArrayLoader((X, y), 8, shuffle=shuffle, seed=1)
    for _ in range(3):  # re-iterable: each iteration is a full epoch
        seen = torch.cat([yb for _, yb in loader])
        assert sorted(seen.tolist()) == list(range(50))
        assert (seen.tolist() == list(range(50))) != shuffle
        for Xb, yb in loader:
            torch.testing.assert_close(Xb, X[yb].float() / 255)  # each image still travels with its label


def test_drop_last_drops_only_the_short_batch():
    loader = ArrayLoader(images_and_ids(50), 8, shuffle=True, drop_last=True, seed=1)
    seen = torch.cat([yb for _, yb in loader]).tolist()
    assert len(seen) == 48 and len(set(seen)) == 48


def epochs(loader: ArrayLoader, count: int) -> list[list[int]]:
    return [torch.cat([yb for _, yb in loader]).tolist() for _ in range(count)]


def test_same_seed_same_order_and_each_epoch_differs():
    data = images_and_ids(40)
    first = epochs(ArrayLoader(data, 7, shuffle=True, seed=5), 3)
    assert epochs(ArrayLoader(data, 7, shuffle=True, seed=5), 3) == first
    assert first[0] != first[1] != first[2]
    assert epochs(ArrayLoader(data, 7, shuffle=True, seed=6), 1)[0] != first[0]
    gen = torch.Generator().manual_seed(5)
    assert epochs(ArrayLoader(data, 7, shuffle=True, generator=gen), 3) == first


def test_unseeded_loader_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    loader = ArrayLoader(images_and_ids(10), 4, shuffle=True)
    list(loader)
    torch.testing.assert_close(torch.rand(3), expected)


def test_uint8_becomes_float32_in_unit_interval_other_dtypes_pass_through():
    X, y = images_and_ids(20)
    X[0] = 255
    X[1] = 0
    Xb, yb = next(iter(ArrayLoader((X, y), 20)))
    assert Xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert Xb.min().item() == 0.0 and Xb.max().item() == 1.0
    torch.testing.assert_close(Xb, X.double().div(255).float())
    assert X.dtype == torch.uint8  # the caller's tensor is untouched
    Z = torch.randn(20, 3, dtype=torch.float64)
    Zb, _ = next(iter(ArrayLoader((Z, y), 20)))
    assert Zb.dtype == torch.float64 and torch.equal(Zb, Z)


@pytest.mark.parametrize("size", [3, 12])
def test_resize_matches_interpolate(size):
    X, y = images_and_ids(16)
    expected = F.interpolate(X.float() / 255, size=(size, size), mode="bilinear", align_corners=False)
    for Xb, yb in ArrayLoader((X, y), 5, shuffle=True, resize=size, seed=2):
        assert Xb.shape == (len(yb), 1, size, size)
        torch.testing.assert_close(Xb, expected[yb])


def test_docstring_examples():
    from linear_nets.data import batches

    result = doctest.testmod(batches)
    assert result.failed == 0 and result.attempted > 0
