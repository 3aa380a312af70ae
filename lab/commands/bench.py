"""``lab bench``: the lab's speed against its peers and floors, as ratios; never fails on a number."""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.bench_measurement import BENCHMARKS
from lab.commands.cluster import add_manifests_argument, with_manifests_dir
from lab.config import LabConfig
from lab.progress import Progress


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(_positive(part.strip()) for part in text.split(",") if part.strip())


def _only(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown) or '(none given)'}; choose from {','.join(BENCHMARKS)}"
        )
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench``."""
    bench = subparsers.add_parser(
        "bench",
        help="benchmark the lab against its peers and floors (ratios); writes bench/results.json",
        description="Measures, in one run, each timing --repeat times (min/median): a cold `lab demo "
        "--once` from a stopped lab, total and per step (demo); `lab up --mode local` on a healthy lab "
        "(warm-up); the lab's push+unpack of a generated model of each --sizes vs raw kit "
        "pack+push+unpack vs cp (transfer); `lab doctor` (doctor); `lab status` in auto mode (status); "
        "V1/V2 predictions through the lab's model server vs the model's own predict (serving); a first "
        "and a second `lab up --mode cluster` on a fresh control plane of the lab's own (cluster). "
        "Stops the lab first (demo) and replaces a running model server (serving). A measurement that "
        "cannot run here is reported as skipped with the reason. Writes JSON results and prints a "
        "Markdown table with each row's goal; with --compare, also each row's ratio to an earlier "
        "results file. Exits 0 whatever the numbers.",
    )
    bench.add_argument(
        "--repeat", type=_positive, default=3, metavar="N", help="runs per timing (default: 3)"
    )
    bench.add_argument(
        "--sizes",
        type=_sizes,
        default=(100, 1024),
        metavar="MIB,...",
        help="model file sizes for the transfer benchmark, in MiB (default: 100,1024)",
    )
    bench.add_argument(
        "--requests",
        type=_positive,
        default=200,
        metavar="N",
        help="prediction requests per protocol and round in the serving benchmark (default: 200)",
    )
    bench.add_argument(
        "--only",
        type=_only,
        default=BENCHMARKS,
        metavar="NAME,...",
        help=f"run only these benchmarks (default: all of {','.join(BENCHMARKS)})",
    )
    bench.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write the JSON results (default: bench/results.json in the project)",
    )
    bench.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="FILE",
        help="an earlier results file: also print each row's ratio now/earlier (below 1 is faster)",
    )
    add_manifests_argument(bench)
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace, config: LabConfig, progress: Progress) -> int:
    """Run the benchmarks, write the results, print the table."""
    from lab import bench
    from lab.bench_compare import compare, comparison_table, read_results

    # Read first: a wrong file is a usage error before minutes of measuring, not after.
    earlier = read_results(args.compare) if args.compare else None
    config = with_manifests_dir(config, args)
    results = bench.run_bench(
        config, progress, repeat=args.repeat, sizes=args.sizes, requests_count=args.requests, only=args.only
    )
    settings = {"repeat": args.repeat, "sizes_mib": list(args.sizes), "requests": args.requests}
    path = bench.write_results(results, args.output, {**settings, "only": list(args.only)})
    print(bench.markdown(results))
    if earlier is not None:
        print()
        print(comparison_table(compare(earlier, read_results(path)), args.compare))
    progress.info(f"results written to {path}")
    return 0
