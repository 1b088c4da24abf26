"""The yardsticks' results as a page a person reads: the scores, then each difference from the baseline."""
from __future__ import annotations

from benchmarks.yardsticks.settings import YardsticksConfig


def markdown(config: YardsticksConfig, results: dict, command: str) -> str:
    load = " / ".join(f"{x:.1f}" for x in results["load_average"])
    names = list(results["costs"])
    columns = list(results["columns"])
    lines = ["# Label recipes on every yardstick", "",
             f"Command: `.venv/bin/{command}` (load average at the end {load}).", "",
             "Scores: mean foreground IoU over images (ignore read as background) on photos and the composite world; "
             "dataset mIoU (fg/bg) in the known-answer world. Passes: network passes per image at the classifier's "
             "input size (forward + backward) as `python -m pipeline plan` counts them; ms: its device time per image "
             "on this CPU; +obj: the object model's pass comes on top. Yardsticks marked *tuned on* had choices "
             "made on them.", ""]
    header = ["recipe", "passes", "ms / image"] + [
        f"{c} ({results['columns'][c]['images']}{', tuned on' if tuned(results, c) else ''})" for c in columns]
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name in names:
        spent = results["costs"][name]
        cells = [f"{100 * results['columns'][c]['recipes'][name]['score']:.1f}" for c in columns]
        lines.append(f"| {name} | {spent['forwards'] + spent['backwards']:g}{' +obj' if spent['object_model'] else ''}"
                     f" | {spent['milliseconds']:.0f} | " + " | ".join(cells) + " |")
    lines += ["", f"Difference from **{config.baseline}**, points, with its paired bootstrap 95 % interval over the "
                  f"images ({config.resamples} resamples); **bold**: the interval excludes 0.", "",
              "| recipe | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name in names:
        if name == config.baseline:
            continue
        cells = []
        for c in columns:
            cell = results["columns"][c]["recipes"][name]
            value, low, high = (100 * x for x in cell["difference"])
            text = f"{value:+.1f} [{low:+.1f}, {high:+.1f}]"
            cells.append(f"**{text}**" if cell["holds"] else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tuned(results: dict, column: str) -> bool:
    return results["yardsticks"][results["columns"][column]["yardstick"]]["tuned_on"]
