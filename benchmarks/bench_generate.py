"""`make generate-labels` on the embedded default, before -> after this stage's speed and size work, in one run.

"before" is the same code with every new switch off (explain.runtime=eager, explain.channels_last=false,
store.compact=false, the batch sizes of before: eager fp32 forwards and whole float16 maps, as the
pipeline ran before them);
"after" is the default config. Each runs from a clean run directory as a separate process, one after
the other, with the load average printed beside its time; then the two stores are compared
(benchmarks/bench_store.py: bytes per image, label pixels changed).

    .venv/bin/python -m benchmarks.bench_generate [--rounds 1] [--out results/bench_generate.md]

`--compare objectness` instead times the default without its object model (explain.objectness and
fuse.combine off, thresholds 0.3 / 0.15: the default before it) against the default.

    .venv/bin/python -m benchmarks.bench_generate --compare objectness --out results/bench_generate_objectness.md
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import bench_store
from benchmarks.result_file import write_result

VARIANTS = {
    "before (eager, whole maps)": ["explain.runtime=eager", "explain.channels_last=false", "store.compact=false",
                                   "explain.batch_size=8", "explain.explainers.lime.batch_size=8"],
    "after (defaults)": [],
}
COMPARISONS = {
    "speed": VARIANTS,
    "objectness": {"before (no object model)": ["explain.objectness=null", "fuse.combine=none",
                                                "fuse.fg_threshold=0.3", "fuse.bg_threshold=0.15"],
                   "after (defaults)": []},
}


def generate(root: Path, overrides: list[str]) -> tuple[float, str, str]:
    """(wall seconds, load average before, after) of one generate-labels run from a clean run directory."""
    shutil.rmtree(root, ignore_errors=True)
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.perf_counter()
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, "-m", "pipeline", "generate-labels", "--config", "conf/sample.yaml",
                    f"run.root={root}", f"ray.temp_dir=/tmp/ray_{root.name}", *overrides], check=True,
                   stdout=subprocess.DEVNULL, env=environment)
    return time.perf_counter() - started, load_before, " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="before/after pairs, alternating")
    parser.add_argument("--root", type=Path, default=Path("runs/bench_generate"))
    parser.add_argument("--out", type=Path, default=Path("results/bench_generate.md"))
    parser.add_argument("--compare", choices=list(COMPARISONS), default="speed")
    args = parser.parse_args(argv)
    variants = COMPARISONS[args.compare]
    rows = []
    for round_ in range(args.rounds):
        for index, (name, overrides) in enumerate(variants.items()):
            seconds, load_before, load_after = generate(args.root / f"v{index}", overrides)
            rows.append(f"| {round_ + 1} | {name} | {seconds:.0f} | {load_before} | {load_after} |")
            print(rows[-1], flush=True)
    store_out = args.out.with_name(args.out.stem + "_store.md")
    if args.compare == "speed":  # the store comparison (bytes, label pixels changed) is about the encodings
        bench_store.main(["--full", str(args.root / "v0" / "sample" / "pssl.zarr"),
                          "--compact", str(args.root / "v1" / "sample" / "pssl.zarr"), "--out", str(store_out)])
    command = " ".join(["python -m benchmarks.bench_generate", *(argv if argv is not None else sys.argv[1:])])
    lines = [f"# `make generate-labels` on the embedded default, before -> after (command: `{command}`)", "",
             f"Overrides of \"before\": {' '.join(next(iter(variants.values())))}. {os.cpu_count()} cores; "
             "the machine is shared, so the load average (1 / 5 / 15 min) is given at each run's start and end.", "",
             "| round | variant | wall s | load at start | load at end |", "|---|---|---:|---|---|", *rows, "",
             store_out.read_text().replace("# ", "## ", 1) if args.compare == "speed" else ""]
    write_result("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
