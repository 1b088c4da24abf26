"""`make bench`: run every benchmark one after the other, then gather their results into one report.

Each benchmark writes its own markdown (tables, and plots as PNG links beside it); this script runs
them in the configured order (never in parallel: they time a shared CPU), records each command, its
wall time and exit status, and writes one markdown report holding every benchmark's section under the
command that made it, plus a plot of the wall times. A failed benchmark is reported, not hidden, and
the others still run.

    .venv/bin/python -m benchmarks.run_all --config conf/bench.yaml [--only NAME ...] [--report-only]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from benchmarks.known_answer.commands import CommandFailed, CommandLog, shown  # noqa: E402
from core.config import ConfigError, load_config  # noqa: E402
from core.schema import BenchConfig  # noqa: E402

IMAGE_LINK = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)(\))")


def relink(markdown: str, source: Path, report_dir: Path) -> str:
    """Rewrite relative image links of a markdown file so they resolve from the report's folder."""
    def fix(match: re.Match) -> str:
        target = match.group(2)
        if "://" in target or target.startswith("/"):
            return match.group(0)
        return match.group(1) + os.path.relpath(source.parent / target, report_dir) + match.group(3)
    return IMAGE_LINK.sub(fix, markdown)


def demote(markdown: str) -> str:
    """One heading level down, so each benchmark's title sits under the report's own."""
    return re.sub(r"^(#+) ", r"#\1 ", markdown, flags=re.MULTILINE)


def plot_times(entries: list[dict], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6, 0.45 * len(entries) + 1.2))
    names = [entry["name"] for entry in entries]
    axis.barh(names, [entry["seconds"] / 60 for entry in entries],
              color=["tab:blue" if entry["status"] == 0 else "tab:red" for entry in entries])
    axis.invert_yaxis()
    axis.set_xlabel("wall time (min); red = failed")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run_benchmarks(benchmarks: list[dict], log: CommandLog) -> None:
    for bench in benchmarks:
        try:
            log.run(bench["name"], [sys.executable, *map(str, bench["args"])])
        except CommandFailed as error:
            print(f"bench: {error}", file=sys.stderr)


def write_report(benchmarks: list[dict], entries: dict[str, dict], report: Path, command: str,
                 ran: set[str]) -> Path:
    report.parent.mkdir(parents=True, exist_ok=True)
    kept = [bench["name"] for bench in benchmarks if bench["name"] not in ran and bench["name"] in entries]
    lines = ["# Benchmark report", "", f"Made by `{command}`; each section below is one benchmark's own "
             "result file under the command that wrote it."
             + (f" Not run by it, shown as their latest run: {', '.join(kept)}." if kept else ""), "",
             "| benchmark | command | wall time | status | result |", "|---|---|---|---|---|"]
    for bench in benchmarks:
        entry = entries.get(bench["name"])
        command_text = entry["command"] if entry else shown([sys.executable, *map(str, bench["args"])])
        time_text = f"{entry['seconds'] / 60:.1f} min" if entry else "not run by run_all"
        status = ("ok" if entry["status"] == 0 else f"FAILED (exit {entry['status']}, log {entry['log']})") if entry else "–"
        output = Path(bench["output"])
        result = f"[{output.name}]({os.path.relpath(output, report.parent)})" if output.is_file() else "missing"
        lines.append(f"| {bench['name']} | `{command_text}` | {time_text} | {status} | {result} |")
    timed = [entries[b["name"]] for b in benchmarks if b["name"] in entries]
    if timed:
        picture = plot_times(timed, report.parent / "bench_times.png")
        lines += ["", f"![wall time per benchmark]({picture.name})"]
    for bench in benchmarks:
        output = Path(bench["output"])
        lines += ["", "---", "", f"## {bench['name']}", ""]
        if not output.is_file():
            lines.append(f"No result file ({output}): the benchmark has not run or failed before writing it.")
            continue
        lines += [f"Command: `{shown([sys.executable, *map(str, bench['args'])])}` → `{output}`", "",
                  demote(relink(output.read_text(), output, report.parent)).rstrip()]
    report.write_text("\n".join(lines) + "\n")
    return report


def remember(log: CommandLog, path: Path) -> dict[str, dict]:
    """The latest run of each benchmark, kept across invocations (so --only and --report-only keep the others')."""
    entries = json.loads(path.read_text()) if path.is_file() else {}
    entries.update({entry["name"]: entry for entry in log.entries})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="conf/bench.yaml")
    parser.add_argument("--only", nargs="+", default=None, help="run only these benchmarks (the report lists all)")
    parser.add_argument("--report-only", action="store_true", help="gather the existing result files, run nothing")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, schema=BenchConfig).model_dump()
        benchmarks = config["benchmarks"]
        names = [bench["name"] for bench in benchmarks]
        unknown = sorted(set(args.only or []) - set(names))
        if unknown:
            raise ConfigError(f"--only: unknown benchmarks {unknown}; {args.config} has {names}")
    except (ConfigError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    log = CommandLog(Path(config["logs"]))
    if not args.report_only:
        run_benchmarks([b for b in benchmarks if not args.only or b["name"] in args.only], log)
    entries = remember(log, Path(config["logs"]) / "runs.json")
    command = shown([sys.executable, "-m", "benchmarks.run_all", *(argv if argv is not None else sys.argv[1:])])
    report = write_report(benchmarks, entries, Path(config["report"]), command, {entry["name"] for entry in log.entries})
    print(f"report: {report}")
    return 0 if all(entry["status"] == 0 for entry in log.entries) else 1


if __name__ == "__main__":
    sys.exit(main())
