"""Explain-stage throughput of one explainer for a few values of one config key, runs in alternation.

Runs the same Ray pipeline as benchmarks/bench_explain.py (embedded default, JPEG photos, every class
known, steady window while every worker is busy) once per value, round after round, so the VM's
drift falls on every value alike. This is how conf/sample.yaml's batch sizes were chosen.

    .venv/bin/python -m benchmarks.bench_batches grad_cam explain.batch_size 4 8 16 [--rounds 2]
    .venv/bin/python -m benchmarks.bench_batches lime explain.explainers.lime.batch_size 1 4 8
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from benchmarks.bench_explain import CONFIG, WORK, explainer_config, run_pipeline, steady_rate, write_images
from benchmarks.result_file import write_result
from core.config import apply_overrides, load_config
from pipeline.cluster.session import ray_session


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("explainer", choices=sorted(WORK))
    parser.add_argument("key", help="a dotted config key, e.g. explain.batch_size")
    parser.add_argument("values", nargs="+")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="default: results/bench_batches_<explainer>.md")
    args = parser.parse_args(argv)
    base = load_config(CONFIG, [f"explain.models=[{args.model}]"])
    torch.set_num_threads(1)
    count, shard = WORK[args.explainer]
    workers = os.cpu_count() or 1
    rates: dict[str, list[float]] = {value: [] for value in args.values}
    with ray_session(base), tempfile.TemporaryDirectory() as scratch:
        data = write_images(Path(scratch) / "data", count)
        for round_number in range(args.rounds):
            for value in args.values:
                config = explainer_config(apply_overrides(base, [f"{args.key}={value}"]), args.explainer, data, shard)
                events = run_pipeline(config, Path(scratch) / f"{round_number}-{value}")
                rates[value].append(steady_rate(events, "explain", workers))
                print(f"{args.key}={value}: {rates[value][-1]:.2f} img/s", flush=True)
    lines = [f"# {args.explainer}: explain-stage images/s by {args.key} ({workers} workers, load average "
             f"{os.getloadavg()[0]:.1f} at the end)", "",
             f"Command: `.venv/bin/python -m benchmarks.bench_batches {args.explainer} {args.key} "
             f"{' '.join(args.values)} --rounds {args.rounds}`", "",
             f"| {args.key} | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " |",
             "|---|" + "---:|" * args.rounds,
             *[f"| {value} | " + " | ".join(f"{rate:.2f}" for rate in rates[value]) + " |" for value in args.values]]
    write_result("\n".join(lines), args.out or Path(f"results/bench_batches_{args.explainer}.md"))


if __name__ == "__main__":
    main()
