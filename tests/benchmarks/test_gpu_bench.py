"""The GPU benchmark's dry run: the whole script on a CPU with tiny models, as the GPU machine would run it."""
from __future__ import annotations

import json
import re

from benchmarks import gpu_bench
from pipeline.plan import gpu_rates


def test_dry_run_measures_every_explainer_and_the_fidelity(tmp_path):
    out = tmp_path / "gpu_bench.md"
    assert gpu_bench.main(["--dry-run", "--wheels", str(tmp_path / "none"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "dry run" in text and "CPU" in text
    for model in ("resnet18", "efficientnet_b0"):
        for explainer in ("grad_cam", "smooth_grad", "lime", "raw bound"):
            for precision in ("fp32", "bf16"):
                assert f"| {model} | {precision} | {explainer} |" in text
        fidelity = re.search(rf"\| {model} \| bf16 \| ([-\d.]+) \| [-\d.]+ \| \S+ \| ([\d.e+-]+) \|", text)
        assert fidelity and 0.5 < float(fidelity.group(1)) <= 1.0, text  # Grad-CAM's correlation with fp32
        assert 0 <= float(fidelity.group(2)) <= 1  # label pixels changed
    assert re.search(r"\| 64 \| fp32 \| [\d.]+ \| – \| – \|", text), text  # the object model ran (on the CPU)
    figures = json.loads(out.with_suffix(".json").read_text())  # what `pipeline plan --rates` reads
    assert set(figures["images_per_second"]) == {"resnet18", "efficientnet_b0"}
    rates = gpu_rates(out.with_suffix(".json"))
    assert rates["resnet18"].forward == figures["images_per_second"]["resnet18"]["fp32"]["forward"] > 0
