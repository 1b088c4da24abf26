"""Fuse variants judged in two worlds: the real-photo development set and the known-answer held-out split.

Every variant is a `fuse:` section (conf/label_variants.yaml). Its labels are made in memory from the
stored maps by the fuse stage's own code (`label_quality.variant_scores`), so a variant costs seconds,
not an explain run. The stores hold every explainer the variants choose from; `prepare` makes them:

    .venv/bin/python -m benchmarks.real_photos.devset materialize runs/real_photos/data
    .venv/bin/python -m pipeline generate-labels --config conf/real_photos.yaml
    .venv/bin/python -m benchmarks.label_variants prepare      # the known-answer tuning + held-out stores
    .venv/bin/python -m benchmarks.label_variants score        # results/label_variants.md (+ .json)

Scores: on real photos the mean over photos of the foreground IoU with ignore read as background
(what a trainer reading the labels sees) — the development set, tuned on; on the known-answer
held-out images the dataset mIoU (fg/bg, ignore read as background), never tuned on. A single
member is scored at its own best threshold without an ignore band: on the development set itself,
and, for the known-answer world, chosen on the tuning images.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.known_answer import report
from benchmarks.known_answer.commands import CommandLog
from core.config import get, load_config
from core.schema import LabelVariantsConfig
from core.store import open_store, store_explainers, store_models
from pipeline import label_quality

CONFIG = "conf/label_variants.yaml"
NO_IGNORE = 0.999  # bg_threshold = 0.999 x fg_threshold: one split, no ignore band


def ka_setup(config: dict) -> tuple[dict, CommandLog, dict, Path]:
    base = report.resolve(get(config, "known_answer.report_config"), False, [])
    base["labels"]["pipeline"]["explain"]["explainers"] = get(config, "known_answer.explainers")
    work_dir = Path(get(config, "known_answer.work_dir"))
    log = CommandLog(work_dir / "logs")
    world, _ = report.prepare_world(log, base)
    return base, log, world, work_dir


def prepare(config: dict) -> None:
    """Index, explain and fuse the known-answer tuning and held-out subsets with every variant explainer."""
    base, log, world, work_dir = ka_setup(config)
    for name in report.SUBSETS:
        report.make_labels(log, base, world, work_dir, name)


def worlds(config: dict) -> dict[str, dict]:
    """{world: {store, ground_truth, encoding, tuning (known-answer only)}}."""
    real = get(config, "real")
    work_dir = Path(get(config, "known_answer.work_dir"))
    ka = {name: {"store": str(work_dir / name / "pssl.zarr"), "ground_truth": str(work_dir / "subsets" / f"gt_{name}"),
                 "encoding": "voc"} for name in report.SUBSETS}
    return {"real": {**real}, "known_answer": {**ka["heldout"], "tuning": ka["tuning"]}}


def score(spec: dict, fuse: dict) -> dict:
    return label_quality.variant_scores(spec["store"], spec["ground_truth"], {"fuse": fuse}, spec["encoding"])


def headline(world: str, summary: dict) -> float:
    """The number each world is judged by (module docstring)."""
    return summary["mean"]["iou_as_bg"] if world == "real" else summary["dataset"]["miou_as_bg"]


def members(spec: dict) -> list[tuple[str, str]]:
    group = open_store(spec["store"], mode="r")
    return [(m, e) for m in store_models(group) for e in store_explainers(group)]


def best_members(world: str, spec: dict, grid: list[float]) -> list[dict]:
    """Each member alone at its own best threshold, no ignore band (chosen on `tuning` where there is one)."""
    rows = []
    for model, explainer in members(spec):
        def at(t, where):
            fuse = {"models": [model], "explainers": [explainer], "fg_threshold": t, "bg_threshold": t * NO_IGNORE,
                    "refine": "none"}
            return score(where, fuse)
        chooser = spec.get("tuning", spec)
        chosen = max(grid, key=lambda t: headline(world, at(t, chooser)))
        summary = at(chosen, spec)
        rows.append({"name": f"{model}/{explainer}", "threshold": chosen, "score": headline(world, summary),
                     "summary": summary})
    return rows


def run_scores(config: dict, only: list[str] | None) -> dict:
    grid = [float(t) for t in get(config, "member_thresholds")]
    results = {}
    for world, spec in worlds(config).items():
        if only and world not in only:
            continue
        started = time.perf_counter()
        variants = []
        for variant in get(config, "variants"):
            summary = score(spec, variant["fuse"])
            variants.append({"name": variant["name"], "fuse": variant["fuse"], "score": headline(world, summary),
                             "summary": summary})
            print(f"{world:13s} {variant['name']:60s} {variants[-1]['score']:.3f}", flush=True)
        singles = best_members(world, spec, grid)
        results[world] = {"variants": variants, "members": singles, "seconds": round(time.perf_counter() - started, 1)}
        curves = {v["name"]: v["summary"]["reliability"] for v, given in zip(variants, get(config, "variants"))
                  if given.get("reliability")}
        if curves:
            label_quality.plot_reliability(curves, Path(get(config, "reliability_plot")).with_stem(
                f"{Path(get(config, 'reliability_plot')).stem}_{world}"))
    return results


def fuse_override(fuse: dict) -> str:
    return " ".join(f"fuse.{k}={json.dumps(v).replace(' ', '')}" for k, v in fuse.items())


def write_markdown(results: dict, path: Path, command: str) -> Path:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = ["# Fuse variants on real photos and in the known-answer world", "",
             f"Command: `{command}` (load average at the end {load}; 2 shared cores).", "",
             "- **real**: the real-photo development set (benchmarks/real_photos; defaults are tuned on its tune half) "
             "as materialised in the store's data root, store made by "
             "`.venv/bin/python -m pipeline generate-labels --config conf/real_photos.yaml`; score = mean over photos "
             "of the foreground IoU with ignore read as background.",
             "- **known-answer**: 210 held-out images of docs/known_answer.md (never tuned on), stores made by "
             "`.venv/bin/python -m benchmarks.label_variants prepare`; score = dataset mIoU (fg/bg), ignore read as "
             "background.",
             "- Each variant's labels are what `python -m pipeline fuse <the overrides>` writes, made in memory.", ""]
    names = [v["name"] for v in next(iter(results.values()))["variants"]]
    lines += ["| variant | real: mean fg IoU | real: ignore | known-answer held-out mIoU | fuse overrides |",
              "|---|---|---|---|---|"]
    for i, name in enumerate(names):
        cells = []
        for world in ("real", "known_answer"):
            v = results.get(world, {}).get("variants", [None] * len(names))[i]
            cells.append(f"{100 * v['score']:.1f}" if v else "–")
            if world == "real":
                cells.append(f"{100 * v['summary']['mean']['ignore_fraction']:.0f} %" if v else "–")
        fuse = next(iter(results.values()))["variants"][i]["fuse"]
        lines.append(f"| {name} | {' | '.join(cells)} | `{fuse_override(fuse)}` |")
    lines += ["", "Single members at their own best threshold (no ignore band):", "",
              "| member | real: mean fg IoU (τ) | known-answer held-out mIoU (τ from tuning) |", "|---|---|---|"]
    by_world = {w: {m["name"]: m for m in r["members"]} for w, r in results.items()}
    for name in dict.fromkeys(n for w in by_world.values() for n in w):
        cells = [f"{100 * by_world[w][name]['score']:.1f} ({by_world[w][name]['threshold']:.2f})"
                 if name in by_world.get(w, {}) else "–" for w in ("real", "known_answer")]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.label_variants", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["prepare", "score"])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--only", nargs="*", choices=["real", "known_answer"], help="score only these worlds")
    args = parser.parse_args(argv)
    config = load_config(args.config, schema=LabelVariantsConfig).model_dump(exclude_unset=True)
    if args.command == "prepare":
        prepare(config)
        return 0
    results = run_scores(config, args.only)
    out = Path(get(config, "out"))
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float))
    command = ("python -m benchmarks.label_variants score" + (f" --config {args.config}" if args.config != CONFIG else "")
               + (f" --only {' '.join(args.only)}" if args.only else ""))
    print(write_markdown(results, out, ".venv/bin/" + command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
