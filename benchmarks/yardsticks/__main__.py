"""`python -m benchmarks.yardsticks`: every recipe on every yardstick, each difference from the baseline with its
paired bootstrap interval, beside each recipe's passes per image (results/yardsticks.md and .json)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.result_file import write_result
from benchmarks.yardsticks.bootstrap import paired_difference
from benchmarks.yardsticks.recipes import cost
from benchmarks.yardsticks.report import markdown
from benchmarks.yardsticks.scores import STATISTICS, LoadedYardstick, scene_groups
from benchmarks.yardsticks.settings import YardsticksConfig
from core.config import load_config
from core.errors import PsslError, run_cli
from core.schema import PipelineConfig
from pipeline.cli import config_context


def columns(config: YardsticksConfig) -> list[tuple[str, str, str | None]]:
    """(column, yardstick, scene group or None): each yardstick whole, a composite one also by kind."""
    out = []
    for name, stick in config.yardsticks.items():
        out.append((name, name, None))
        out += [(f"{name} {group}", name, group) for group in scene_groups(stick)]
    return out


def evaluate(config: YardsticksConfig, only: list[str] | None) -> dict:
    base = load_config(config.base, schema=PipelineConfig, context=config_context)
    recipes = [r for r in config.recipes if not only or r.name in only or r.name == config.baseline]
    costs = {r.name: cost(r, base).__dict__ for r in recipes}
    results = {"costs": costs, "columns": {}, "yardsticks": {}}
    for name, stick in config.yardsticks.items():
        if not Path(stick.store).exists():
            raise PsslError(f"yardstick {name}: no store at {stick.store} (docs/label_quality.md says how to make it)")
        started = time.perf_counter()
        loaded = LoadedYardstick(stick)
        scored = {r.name: loaded.score(r) for r in recipes}
        del loaded
        groups = scene_groups(stick)
        results["yardsticks"][name] = {"tuned_on": stick.tuned_on, "score": stick.score,
                                       "images": len(scored[config.baseline].images),
                                       "seconds": round(time.perf_counter() - started, 1)}
        for column, _, group in [c for c in columns(config) if c[1] == name]:
            among = groups.get(group)
            baseline = scored[config.baseline]
            picked = baseline.positions(among) if among is not None else slice(None)
            cells = {}
            for recipe in recipes:
                mine = scored[recipe.name]
                assert mine.images == baseline.images, f"{name}: {recipe.name} scored other images"
                difference = paired_difference(baseline.rows[picked], mine.rows[picked], STATISTICS[stick.score],
                                               resamples=config.resamples)
                cells[recipe.name] = {"score": mine.score(stick.score, among), "ignore": mine.ignore,
                                      "difference": [difference.value, difference.low, difference.high],
                                      "holds": difference.holds}
            results["columns"][column] = {"yardstick": name, "images": len(baseline.rows[picked]), "recipes": cells}
            print(f"{column}: " + ", ".join(f"{r} {100 * c['score']:.1f}" for r, c in cells.items()), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.yardsticks", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/yardsticks.yaml")
    parser.add_argument("--only", nargs="*", help="recipes to score (and the baseline)")
    parser.add_argument("--out", type=Path, default=None, help="default: the config's out")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def command() -> None:
        config = load_config(args.config, schema=YardsticksConfig)
        results = evaluate(config, args.only)
        results["load_average"] = os.getloadavg()
        command_line = "python -m benchmarks.yardsticks " + " ".join(sys.argv[1:] if argv is None else argv)
        write_result(markdown(config, results, command_line.strip()), args.out or Path(config.out),
                     json.loads(json.dumps(results, default=float)))

    return run_cli(command, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
