"""The known-answer report: labels scored against exact masks, then PSSL pre-training judged downstream.

1. World and classifiers (`benchmarks.known_answer.train_classifiers`; generated / trained if missing).
2. Labels (`python -m pipeline generate-labels`) for two disjoint image subsets: `tuning` (classification
   train split) and `heldout` (val split).
3. Every models x explainers product is scored with pipeline.label_quality over a threshold sweep.
   Each subset's threshold, and the ensemble used as the fusion default (members, weighting,
   threshold), are chosen on `tuning` only; the report gives their mIoU on `heldout`.
4. Both stores are fused again with the tuned defaults (`python -m pipeline fuse`).
5. Downstream: pre-train on the tuning images' labels, fine-tune on the small segmentation split from
   that checkpoint and from scratch, for each seed; mean +- std of the world's mIoU.

Everything lands in `out_dir` (report.md, report.json, plots), each number beside the command that
made it; the stores and training runs in `work_dir`.

    .venv/bin/python -m benchmarks.known_answer.report --config conf/known_answer_report.yaml [--quick]
        [--labels-only] [--keep] [--render-only] [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.known_answer import downstream, labels, overlays
from benchmarks.known_answer.commands import CommandFailed, CommandLog, as_overrides, python_command, shown
from benchmarks.known_answer.models import KNOWN_ANSWER_ARCH
from core.config import ConfigError, apply_overrides, check, get, load_config
from core.schema import KnownAnswerConfig, KnownAnswerReportConfig
from core.store import INDEX_CLASS_ID, open_store, top1_name
from pipeline import label_quality

TARGET_ENSEMBLE_GAIN = 2.0  # points of mIoU over the best single member (the target)
SUBSETS = ("tuning", "heldout")
REPORTED_KINDS = ("member", "model", "explainer", labels.ENSEMBLE)


def resolve(config_path: str, quick: bool, overrides: list[str]) -> dict:
    config = load_config(config_path)
    if quick:
        config = apply_overrides(config, as_overrides(get(config, "quick")))
    config = apply_overrides(config, overrides)
    check(config, KnownAnswerReportConfig)
    return config


def world_overrides(config: dict) -> list[str]:
    return as_overrides(get(config, "world.set", {}) or {})


def prepare_world(log: CommandLog, config: dict) -> tuple[dict, dict]:
    """Generate the world and train (or reuse) the classifiers; return the world config and accuracies."""
    world_path = get(config, "world.config")
    log.run("classifiers", python_command("benchmarks.known_answer.train_classifiers", "--config", world_path,
                                          *world_overrides(config)))
    world = load_config(world_path, world_overrides(config), schema=KnownAnswerConfig).model_dump()
    summary = json.loads((Path(world["classifiers"]["output"]) / "summary.json").read_text())
    return world, summary


def world_class_names(world: dict) -> list[str]:
    return json.loads((Path(world["root"]) / "world.json").read_text())["class_names"]


def classifier_models(world: dict) -> list[dict]:
    output = Path(world["classifiers"]["output"])
    return [{"arch": KNOWN_ANSWER_ARCH, "name": name, "family": spec["family"], "weights": str(output / f"{name}.pt")}
            for name, spec in world["classifiers"]["models"].items()]


def make_labels(log: CommandLog, config: dict, world: dict, work_dir: Path, name: str,
                fuse: dict | None = None) -> tuple[labels.ImageSubset, Path, Path]:
    """Index, explain and fuse one subset (`fuse`: settings replacing the config's provisional ones)."""
    part = get(config, f"labels.{name}")
    subset = labels.write_subset(name, Path(world["root"]), part["split"], int(part["per_class"]), work_dir / "subsets")
    store = work_dir / name / "pssl.zarr"
    pipeline = labels.pipeline_config(get(config, "labels.pipeline"), subset, store, classifier_models(world),
                                      len(world_class_names(world)))
    config_file = work_dir / name / "labels.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    # overwrite: a --keep re-run re-fuses with the current settings instead of refusing the stored ones
    log.run(f"labels_{name}", python_command("pipeline", "generate-labels", "--config", str(config_file),
                                             *as_overrides({"fuse": {**(fuse or {}), "overwrite": True}})))
    return subset, store, config_file


def tuned_fuse_settings(config: dict, fusion: dict) -> dict:
    fg = fusion["fg_threshold"]
    return {"models": fusion["models"], "explainers": fusion["explainers"], "fg_threshold": fg,
            "bg_threshold": round(fg * float(get(config, "labels.bg_fraction")), 4),
            "weight_by_probability": fusion["weight_by_probability"]}


def subset_accuracy(store: Path, models: list[str]) -> dict[str, float]:
    """Top-1 accuracy of each classifier on the images of one store (the explain stage's scores)."""
    group = open_store(store, mode="r")
    truth = np.asarray(group[INDEX_CLASS_ID][:])
    return {model: float((np.asarray(group[top1_name(model)][:]) == truth).mean()) for model in models}


def label_part(log: CommandLog, config: dict, world: dict, work_dir: Path, out_dir: Path) -> dict:
    """Tuning labels -> sweep -> tuned defaults -> tuning labels re-fused and held-out labels made with them."""
    models = list(world["classifiers"]["models"])
    explainers = list(get(config, "labels.pipeline.explain.explainers"))
    subsets = labels.product_subsets(models, explainers)
    grid = labels.thresholds(get(config, "labels.thresholds"))
    made = {"tuning": make_labels(log, config, world, work_dir, "tuning")}
    started = time.perf_counter()
    rows = {"tuning": labels.sweep(made["tuning"][1], made["tuning"][0], subsets, grid)}
    chosen, fusion = labels.tune(rows["tuning"], subsets, int(get(config, "labels.min_members")))
    scoring_seconds = time.perf_counter() - started
    fuse_settings = tuned_fuse_settings(config, fusion)
    log.run("fuse_tuning", python_command("pipeline", "fuse", "--config", str(made["tuning"][2]),
                                          *as_overrides({"fuse": {**fuse_settings, "overwrite": True}})))
    made["heldout"] = make_labels(log, config, world, work_dir, "heldout", fuse_settings)
    started = time.perf_counter()
    rows["heldout"] = labels.sweep(made["heldout"][1], made["heldout"][0], subsets, grid)
    scoring_seconds += time.perf_counter() - started
    picked = {name: labels.at_thresholds(rows[name], chosen) for name in SUBSETS}
    oracle = {row["subset"]: row for row in label_quality.best_rows(rows["heldout"])}
    plots = {}
    for name in SUBSETS:
        shown_rows = [r for r in rows[name] if r["subset"] == fusion["subset"]
                      or (not r["weighted"] and subsets[r["subset"]]["kind"] in REPORTED_KINDS)]
        plots[name] = label_quality.plot(shown_rows, out_dir / f"sweep_{name}.png").name
    heldout_subset, heldout_store, _ = made["heldout"]
    overlay = overlays.draw(heldout_store, heldout_subset, int(get(config, "labels.overlay_images")),
                            out_dir / "overlay_heldout.png").name
    return {
        "subsets": {name: {"split": s.split, "images": s.count, "store": str(st)} for name, (s, st, _) in made.items()},
        "accuracy": {name: subset_accuracy(st, models) for name, (_, st, _) in made.items()},
        "kinds": {name: s["kind"] for name, s in subsets.items()},
        "thresholds": chosen, "fusion": fusion, "fuse_settings": fuse_settings,
        "heldout": picked["heldout"], "tuning": picked["tuning"], "heldout_oracle": oracle,
        "fused_quality": {name: labels.fused_label_quality(st, s) for name, (s, st, _) in made.items()},
        "plots": plots, "overlay": overlay, "scoring_seconds": round(scoring_seconds, 1),
        "tuning_store": str(made["tuning"][1]),
        "sweeps": {name: [{k: v for k, v in r.items() if k != "per_class"} for r in rows[name]] for name in SUBSETS},
    }


def ensemble_verdict(result: dict) -> dict:
    """The tuned ensemble and the full ensemble against the best single member, on held-out images."""
    heldout, kinds, fusion = result["heldout"], result["kinds"], result["fusion"]
    members = {name: row for name, row in heldout.items() if kinds.get(name) == "member"}
    best_name = max(members, key=lambda name: members[name]["miou"])
    best = members[best_name]["miou"]
    worst_name = min(members, key=lambda name: members[name]["miou"])
    tuned = heldout[fusion["subset"]]["miou"]
    full = heldout[labels.ENSEMBLE]["miou"]
    gain = 100 * (tuned - best)
    return {"best_member": best_name, "best_member_miou": best, "worst_member": worst_name,
            "worst_member_miou": members[worst_name]["miou"], "tuned_ensemble": fusion["subset"],
            "tuned_ensemble_miou": tuned, "full_ensemble_miou": full, "gain": gain,
            "full_gain": 100 * (full - best), "target_met": gain >= TARGET_ENSEMBLE_GAIN}


def downstream_part(log: CommandLog, config: dict, world: dict, label_result: dict, work_dir: Path) -> dict:
    settings = get(config, "downstream")
    num_classes = len(world_class_names(world)) + 1
    checkpoint = downstream.pretrain(log, settings["pretrain"], Path(label_result["tuning_store"]), num_classes,
                                     work_dir / "pretrain")
    voc_root = Path(world["root"]) / "VOCdevkit"
    modes = [mode["name"] for mode in settings["finetune"]["set"]["eval"]["modes"]]
    values = {mode: {arm: [] for arm in downstream.ARMS} for mode in modes}
    for seed in settings["seeds"]:
        for arm in downstream.ARMS:
            results = downstream.finetune(log, settings["finetune"], arm, int(seed), voc_root,
                                          checkpoint if arm == "pssl" else None, work_dir / "finetune")
            for mode in modes:
                values[mode][arm].append(downstream.world_miou(results, num_classes, mode))
    return {"num_classes": num_classes, "seeds": list(settings["seeds"]), "modes": modes,
            "summary": {mode: downstream.summarise(v) for mode, v in values.items()}}


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def command_lines(log: CommandLog, *names: str) -> list[str]:
    return [f"- `{entry['command']}` ({entry['seconds']:.0f} s)" for entry in log.entries if entry["name"] in names]


def classifier_section(summary: dict, result: dict | None) -> list[str]:
    lines = ["## 1. Classifiers", "",
             "Top-1 accuracy of each classifier on the whole val split (from `train_classifiers`' summary.json) "
             "and on the two label subsets (from the explain stage's scores). The tuning subset is drawn from "
             "the classifiers' own training images (as ImageNet's train split is in the paper), so their accuracy "
             "there is higher; the held-out subset is unseen val images.", ""]
    header = "| model | val split | " + (" | ".join(f"{name} subset" for name in SUBSETS) if result else "") + " |"
    lines += [header.replace("|  |", "|"), "|---|---|" + ("---|" * len(SUBSETS) if result else "")]
    for model, record in summary["models"].items():
        cells = [pct(record["val_accuracy"])]
        if result:
            cells += [pct(result["accuracy"][name][model]) for name in SUBSETS]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines.append(f"| ensemble (mean softmax) | {pct(summary['ensemble_val_accuracy'])} |" + (" – |" * len(SUBSETS) if result else ""))
    return lines


def label_section(result: dict, verdict: dict, log: CommandLog) -> list[str]:
    sub = result["subsets"]
    fusion, settings = result["fusion"], result["fuse_settings"]
    lines = ["## 2. Label quality against the exact masks", "",
             f"- **tuning** images: the first {sub['tuning']['images']} of the classification `{sub['tuning']['split']}` "
             f"split (same count per class); thresholds and the fusion defaults are chosen here.",
             f"- **held-out** images: the first {sub['heldout']['images']} of the `{sub['heldout']['split']}` split; "
             "no choice is made on them. All numbers in the table are held-out numbers unless marked.",
             "- mIoU = mean of foreground and background IoU (dataset-level, at the 96 px map size, "
             "`pipeline.label_quality`), in points (%). τ = the foreground threshold on the consensus, chosen on "
             "the tuning images for each row; 'best τ on held-out' is an oracle shown only for comparison.", "",
             "| subset | kind | τ (tuned) | held-out mIoU | IoU fg | IoU bg | worst class IoU fg | tuning mIoU "
             "| best τ on held-out (oracle) |", "|---|---|---|---|---|---|---|---|---|"]
    order = {kind: i for i, kind in enumerate(REPORTED_KINDS)}
    names = sorted((n for n in result["heldout"] if result["kinds"].get(n) in order),
                   key=lambda n: (order[result["kinds"][n]], n))
    if fusion["subset"] not in names:
        names.append(fusion["subset"])
    for name in names:
        row, tune_row, oracle = result["heldout"][name], result["tuning"][name], result["heldout_oracle"][name]
        worst = min(row["per_class"].values()) if row["per_class"] else float("nan")
        kind = result["kinds"].get(labels.base_name(name), "ensemble")
        label = f"**{name}** (tuned default)" if name == fusion["subset"] else name
        lines.append(f"| {label} | {kind} | {row['threshold']:.2f} | **{pct(row['miou'])}** | {pct(row['iou_fg'])} "
                     f"| {pct(row['iou_bg'])} | {pct(worst)} | {pct(tune_row['miou'])} "
                     f"| {pct(oracle['miou'])} at {oracle['threshold']:.2f} |")
    status = "met" if verdict["target_met"] else "missed"
    lines += ["", f"**Tuned fusion default** (chosen on the tuning images among every models × explainers product "
              f"with ≥ 2 members, unweighted and probability-weighted): `{fusion['subset']}` — models "
              f"{fusion['models']}, explainers {fusion['explainers']}, weight_by_probability="
              f"{str(fusion['weight_by_probability']).lower()}, τ_fg={settings['fg_threshold']:.2f}, "
              f"τ_bg={settings['bg_threshold']:.2f} (τ_bg = bg_fraction × τ_fg).", "",
              f"**Ensemble vs best single member: {verdict['gain']:+.1f} points (target ≥ +{TARGET_ENSEMBLE_GAIN:.0f}): "
              f"{status}.** Held-out mIoU: tuned ensemble {pct(verdict['tuned_ensemble_miou'])}, full ensemble "
              f"{pct(verdict['full_ensemble_miou'])} ({verdict['full_gain']:+.1f}), best single member "
              f"`{verdict['best_member']}` {pct(verdict['best_member_miou'])}, worst single member "
              f"`{verdict['worst_member']}` {pct(verdict['worst_member_miou'])}."]
    lines += ["", why_ensemble(verdict, result), ""]
    q = result["fused_quality"]["heldout"]
    lines += [f"Fused labels as written (`pssl/mask` with the tuned default, held-out images): "
              f"{pct(q['decided_fraction'])} % of pixels decided (the rest ignore); on decided pixels mIoU "
              f"{pct(q['miou'])} (fg {pct(q['iou_fg'])}, bg {pct(q['iou_bg'])}).", "",
              f"![threshold sweep, held-out]({result['plots']['heldout']}) "
              f"![threshold sweep, tuning]({result['plots']['tuning']})", "",
              f"Held-out images, ground truth and PSSL label (tuned default): ![overlay]({result['overlay']})", "",
              "Made by (scores computed by the report from these stores, in "
              f"{result['scoring_seconds']:.0f} s):"]
    lines += command_lines(log, "labels_tuning", "fuse_tuning", "labels_heldout")
    return lines


def why_ensemble(verdict: dict, result: dict) -> str:
    """The facts behind the verdict, stated from the numbers (the discussion is in docs/known_answer_results.md)."""
    explainer_rows = {n: r["miou"] for n, r in result["heldout"].items() if result["kinds"].get(n) == "explainer"}
    model_rows = {n: r["miou"] for n, r in result["heldout"].items() if result["kinds"].get(n) == "model"}
    spread = 100 * (verdict["best_member_miou"] - verdict["worst_member_miou"])
    text = (f"Why: the single members span {spread:.1f} points; per explainer across models "
            + ", ".join(f"{n} {pct(v)}" for n, v in sorted(explainer_rows.items(), key=lambda x: -x[1]))
            + "; per model " + ", ".join(f"{n} {pct(v)}" for n, v in sorted(model_rows.items(), key=lambda x: -x[1]))
            + ". ")
    if verdict["target_met"]:
        return text + "Averaging members whose errors differ removes more error than the weaker members add."
    return text + ("Averaging helps only where members err in different places; here the weaker members pull "
                   "the consensus toward their own errors about as much as averaging removes, so the ensemble "
                   "does not clear the best member by the target margin.")


def downstream_section(result: dict, log: CommandLog) -> list[str]:
    lines = ["## 3. Downstream: PSSL pre-training, then fine-tuning on the small segmentation split", "",
             f"Fine-tuned on the segmentation `train` split, scored on its `val` split: mIoU (%) over the world's "
             f"{result['num_classes']} classes (background + categories), seeds {result['seeds']}, mean ± sample std.",
             "", "| eval mode | PSSL pre-trained → fine-tuned | from scratch → fine-tuned | gain | per seed (PSSL / scratch) |",
             "|---|---|---|---|---|"]
    for mode in result["modes"]:
        s = result["summary"][mode]
        per_seed = ", ".join(f"{a:.1f} / {b:.1f}" for a, b in zip(s["pssl"]["values"], s["baseline"]["values"]))
        lines.append(f"| {mode} | {s['pssl']['mean']:.1f} ± {s['pssl']['std']:.1f} | {s['baseline']['mean']:.1f} ± "
                     f"{s['baseline']['std']:.1f} | {s['gain']:+.1f} | {per_seed} |")
    main = result["summary"][result["modes"][0]]
    status = "met" if main["target_met"] else "missed"
    wins = sum(a > b for a, b in zip(main["pssl"]["values"], main["baseline"]["values"]))
    lines += ["", f"**PSSL pre-training vs the baseline fine-tune ({result['modes'][0]}): {main['gain']:+.1f} points; "
              f"spread between seeds (larger std of the two arms) {main['spread']:.1f}: {status}.** "
              f"PSSL is ahead on {wins} of {len(main['pssl']['values'])} seeds (same seed, same fine-tuning data "
              f"order). Both arms stay at {min(main['pssl']['mean'], main['baseline']['mean']):.0f}–"
              f"{max(main['pssl']['mean'], main['baseline']['mean']):.0f} % mIoU: with this short schedule most "
              "categories are still at or near 0 IoU in both, so the gap measures an early-training head start; "
              "docs/known_answer_results.md discusses it."]
    if not main["target_met"]:
        lines.append("Why missed: the gain is within the seed-to-seed spread at this size of pre-training and "
                     "fine-tuning (docs/known_answer_results.md: the sizes and what would change it).")
    lines += ["", "Made by:"]
    lines += command_lines(log, "pretrain", *[e["name"] for e in log.entries if e["name"].startswith("finetune_")])
    return lines


def write_report(out_dir: Path, command: str, config: dict, summary: dict, label_result: dict | None,
                 verdict: dict | None, down: dict | None, log: CommandLog, seconds: float) -> Path:
    lines = ["# Known-answer report", "",
             f"Command (reproduces every number below): `{command}`", "",
             f"Wall time {seconds / 60:.1f} min on {describe_machine()}. The world: docs/known_answer.md; "
             "how to read this: docs/known_answer_results.md.", ""]
    lines += classifier_section(summary, label_result)
    lines += ["", "Made by:"] + command_lines(log, "classifiers") + [""]
    if label_result:
        lines += label_section(label_result, verdict, log) + [""]
    if down:
        lines += downstream_section(down, log) + [""]
    lines += ["## 4. Every command run", "",
              "Load = the machine's 1-minute load average before → after the step (2 cores; above 2 the step "
              "shared the CPU with other work and its time is inflated accordingly).", "",
              "| step | command | seconds | load |", "|---|---|---|---|"]
    lines += [f"| {e['name']} | `{e['command']}` | {e['seconds']:.0f} | {e['load'][0]} → {e['load'][1]} |"
              for e in log.entries]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (out_dir / "report.json").write_text(json.dumps(
        {"command": command, "config": config, "classifiers": summary, "labels": label_result,
         "ensemble_verdict": verdict, "downstream": down, "commands": log.entries, "seconds": round(seconds, 1)},
        indent=2, default=str) + "\n")
    return path


def describe_machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"


def run(config: dict, command: str, labels_only: bool = False, keep: bool = False) -> Path:
    work_dir, out_dir = Path(get(config, "work_dir")), Path(get(config, "out_dir"))
    if work_dir.exists() and not keep:
        shutil.rmtree(work_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = CommandLog(work_dir / "logs")
    started = time.perf_counter()
    world, summary = prepare_world(log, config)
    label_result = label_part(log, config, world, work_dir, out_dir)
    verdict = ensemble_verdict(label_result)
    if not labels_only:  # the label part's report first, so a long downstream part never leaves nothing
        write_report(out_dir, command, config, summary, label_result, verdict, None, log, time.perf_counter() - started)
    down = None if labels_only else downstream_part(log, config, world, label_result, work_dir)
    path = write_report(out_dir, command, config, summary, label_result, verdict, down, log,
                        time.perf_counter() - started)
    print(f"report: {path}")
    return path


def render(config: dict) -> Path:
    """Write report.md again from report.json (after a change to the report's text, without re-running)."""
    out_dir = Path(get(config, "out_dir"))
    data = json.loads((out_dir / "report.json").read_text())
    log = CommandLog(Path(get(config, "work_dir")) / "logs", data["commands"])
    return write_report(out_dir, data["command"], data["config"], data["classifiers"], data["labels"],
                        data["ensemble_verdict"], data["downstream"], log, data["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="conf/known_answer_report.yaml")
    parser.add_argument("--quick", action="store_true", help="apply the config's quick: overrides")
    parser.add_argument("--labels-only", action="store_true", help="stop after the label part")
    parser.add_argument("--keep", action="store_true", help="reuse work_dir (stores resume) instead of starting afresh")
    parser.add_argument("--render-only", action="store_true", help="rewrite report.md from report.json, run nothing")
    parser.add_argument("overrides", nargs="*", help="key=value settings, e.g. labels.tuning.per_class=20")
    args = parser.parse_args(argv)
    command = shown([sys.executable, "-m", "benchmarks.known_answer.report", *(argv if argv is not None else sys.argv[1:])])
    try:
        config = resolve(args.config, args.quick, args.overrides)
        if args.render_only:
            print(f"report: {render(config)}")
        else:
            run(config, command, args.labels_only, args.keep)
    except (ConfigError, CommandFailed, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
