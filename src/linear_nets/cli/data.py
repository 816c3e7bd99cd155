"""`linear-nets data path|info|show|download`: where Fashion-MNIST is, whether it verifies, what it holds, a picture.

`data path` exits with status 2 and one line on stderr when the data is nowhere; scripts/setup.sh relies on that.
"""

from __future__ import annotations

import argparse
import math
import sys

from linear_nets.cli.common import check_show_count, positive_float, positive_int
from linear_nets.data import fashion_mnist as fm
from linear_nets.pipeline.config import SEED
from linear_nets.timing import Timer


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` group and its four commands."""
    parser = subparsers.add_parser("data", help="find, check, show or download Fashion-MNIST")
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND")
    commands.required = True

    path = commands.add_parser("path", help="print the directory holding the four files (exit 2 if none)")
    _add_data_dir(path)
    path.set_defaults(func=run_path)

    info = commands.add_parser("info", help="where the data is, whether it verifies, examples per class, load time")
    _add_data_dir(info)
    info.set_defaults(func=run_info)

    show = commands.add_parser("show", help="draw a labelled grid of images into a PNG or SVG file (d2l 3.5)")
    show.add_argument("--n", type=positive_int, default=18, help="number of images (18: two rows of 9)")
    show.add_argument("--split", choices=["train", "test"], default="train", help="which split (train)")
    show.add_argument("--out", default="fashion-mnist.png", help="FILE.png or FILE.svg (default fashion-mnist.png)")
    show.add_argument("--seed", type=int, help="pick images at random with this seed (default: the first n)")
    _add_data_dir(show)
    show.set_defaults(func=run_show)

    download = commands.add_parser("download", help="download the four files from the upstream mirror, verified")
    download.add_argument("--dest", help=f"directory to put them in (default {fm.default_download_dir()})")
    download.add_argument("--base-url", default=fm.BASE_URL, help="where the .gz files are (default: upstream)")
    download.add_argument("--timeout", type=positive_float, default=60.0, help="seconds per connect or read (60)")
    download.add_argument("--deadline", type=positive_float, default=fm.DOWNLOAD_DEADLINE,
                          help=f"seconds the whole download may take ({fm.DOWNLOAD_DEADLINE:g})")  # fmt: skip
    download.set_defaults(func=run_download)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="directory holding the four IDX files (default: search; see `data path`)")


def run_path(args: argparse.Namespace) -> int:
    """Print the directory `locate` finds."""
    print(fm.locate(args.data_dir))
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Load both splits, report checks, counts per class and load time; exit 1 when a file is not the published one."""
    timer = Timer()
    splits = [fm.FashionMNIST(split, args.data_dir, strict=False) for split in ("train", "test")]
    seconds = timer.stop()
    print(f"Fashion-MNIST in {splits[0].root}")
    print("files (SHA-256 of the decompressed bytes):")
    checks = [check for split in splits for check in split.checks]
    for check in checks:
        if not check.verified:
            state = "NOT VERIFIED: not the published file (see the warning below)"
        else:
            state = "verified (remembered from an earlier check)" if check.from_cache else "verified (hashed now)"
        print(f"  {check.path.name:<28} {state}")
    print(f"\n{'class':<12} {'train':>7} {'test':>7}")
    counts = [split.labels.bincount(minlength=len(fm.CLASSES)).tolist() for split in splits]
    for i, name in enumerate(fm.CLASSES):
        print(f"{i} {name:<10} {counts[0][i]:>7} {counts[1][i]:>7}")
    print(f"{'total':<12} {len(splits[0]):>7} {len(splits[1]):>7}")
    print(f"\nloaded {len(splits[0]) + len(splits[1]):,} images in {seconds:.2f} s")
    problems = [check.problem for check in checks if not check.verified]
    for problem in problems:
        print(f"linear-nets: warning: {problem}", file=sys.stderr)
    return 1 if problems else 0


def run_show(args: argparse.Namespace) -> int:
    """Draw `--n` images of a split with their text labels, `ceil(n / 9)` rows, into `--out`."""
    import torch

    from linear_nets import plotting

    plotting.figure_paths(args.out)  # a bad --out fails before the data is loaded
    if args.seed is not None:
        SEED.check(args.seed)
    check_show_count(args.n)
    dataset = fm.FashionMNIST(args.split, args.data_dir)
    check_show_count(args.n, len(dataset), f"the {args.split} split")
    if args.seed is None:
        index = torch.arange(args.n)
    else:
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[: args.n]
    images, labels = dataset[index]
    rows = math.ceil(args.n / 9)
    axes = plotting.show_images(images, rows, math.ceil(args.n / rows), titles=fm.get_fashion_mnist_labels(labels))
    for path in plotting.save_figure(axes[0].figure, args.out):
        print(f"wrote {path}: {args.n} {args.split} images")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download into `--dest` (or the user cache, where `locate` looks) and print the directory."""
    target = args.dest or fm.default_download_dir()
    print(f"downloading Fashion-MNIST from {args.base_url} into {target} ...", file=sys.stderr)
    directory = fm.download(args.dest, base_url=args.base_url, timeout=args.timeout, deadline=args.deadline)
    print(directory)
    if args.dest is not None and directory.resolve() != fm.default_download_dir().resolve():
        print(f"use it with --data-dir {directory} or LINEAR_NETS_DATA={directory}", file=sys.stderr)
    return 0
