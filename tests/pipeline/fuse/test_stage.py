"""Fuse stage on real Zarr stores with real dask: the rule, thresholds, weights, resume, config changes."""
import os

import numpy as np
import pytest

from core.store import (BACKGROUND, CONSENSUS, FOREGROUND, IGNORE, INDEX_STATUS, MASK, WEIGHT, WEIGHT_SCALE,
                        mark_done, open_store, progress_name, q99_name, saliency_name, score_name)
from core.config import ConfigError
from core.schema import FuseRule
from pipeline.fuse import stage as fuse
from pipeline.fuse import rules as fuse_rules
from pipeline.fuse.kernel import q99_of_maps
from benchmarks.synthetic_store import make_synthetic_store

FG, BG = 0.5, 0.2


def config(**extra):
    """Consensus is stored here (it is off by default) so the tests can check it against the reference."""
    return {"fuse": {"fg_threshold": FG, "bg_threshold": BG, "num_workers": 2, "shards_per_batch": 2,
                     "write_consensus": True, "refine": "none", "combine": "none", **extra}}


def reference(group, members, weighted, fg=FG, bg=BG):
    """The documented rule, written plainly per image in float64."""
    status = group[INDEX_STATUS][:]
    maps = [group[saliency_name(m, e)][:].astype(np.float64) for m, e in members]
    probs = [group[score_name(m)][:].astype(np.float64) for m, _ in members]
    n_img = status.shape[0]
    mask = np.full(maps[0].shape, IGNORE, np.uint8)
    weight = np.zeros(maps[0].shape, np.uint8)
    consensus = np.full(maps[0].shape, np.nan)
    for i in range(n_img):
        if status[i] != 1:
            continue
        w = np.array([p[i] for p in probs]) if weighted else np.ones(len(members))
        w = w / w.sum()
        normalised = []
        for stack in maps:
            r = np.maximum(stack[i], 0)
            q = np.percentile(r, 99)
            normalised.append(np.minimum(r / q, 1) if q > 0 else (r > 0).astype(float))
        c = sum(wi * ni for wi, ni in zip(w, normalised))
        vote_fg = sum(wi * (ni >= fg) for wi, ni in zip(w, normalised))
        vote_bg = sum(wi * (ni <= bg) for wi, ni in zip(w, normalised))
        mask[i] = np.where(c >= fg, FOREGROUND, np.where(c <= bg, BACKGROUND, IGNORE))
        agree = np.where(c >= fg, vote_fg, np.where(c <= bg, vote_bg, 0))
        weight[i] = np.rint(agree * WEIGHT_SCALE)
        consensus[i] = c
    return mask, weight, consensus


def assert_matches_reference(group, weighted):
    members = [tuple(m) for m in group.attrs["fuse"]["members"]]
    mask, weight, consensus = reference(group, members, weighted)
    got_c = group[CONSENSUS][:].astype(np.float64)
    np.testing.assert_allclose(got_c, consensus, atol=2e-3, equal_nan=True)  # float16 storage
    # Pixels whose consensus sits within float32 rounding of a threshold may legitimately flip.
    near = (np.abs(consensus - FG) < 1e-5) | (np.abs(consensus - BG) < 1e-5)
    got_mask, got_weight = group[MASK][:], group[WEIGHT][:]
    assert np.array_equal(got_mask[~near], mask[~near])
    assert np.abs(got_weight[~near].astype(int) - weight[~near]).max() <= 1


@pytest.mark.parametrize("weighted", [False, True])
def test_fusion_matches_numpy_reference(tmp_path, weighted):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 10, map_size=16, shard=4, noise=1.0, bad=(3, 8))
    summary = fuse.run(config(weight_by_probability=weighted), store)
    assert summary["shards_fused"] == 3 and summary["images_fused"] == 10
    group = open_store(store)
    assert_matches_reference(group, weighted)
    assert (group[MASK][3] == IGNORE).all() and (group[WEIGHT][8] == 0).all()
    assert np.isnan(group[CONSENSUS][3].astype(float)).all()
    assert group[progress_name("fuse", "labels")][:].all()


def two_member_maps():
    """Two float16 10x10 members whose q99 is exactly 1 (two pixels at 1.0), so n equals the map's positive part.

    Every value is exact in float16 and the test thresholds are 0.5 / 0.25, so "inclusive" is tested exactly.
    """
    a, b = np.zeros((1, 10, 10), np.float16), np.zeros((1, 10, 10), np.float16)
    a[0, 9, 8:] = b[0, 9, 8:] = 1.0
    cells = [(0.875, 0.625), (0.875, 0.125), (0.375, 0.125), (0.375, 0.3125), (-0.5, 0.0), (0.4375, 0.5625)]
    for j, (va, vb) in enumerate(cells):
        a[0, 0, j], b[0, 0, j] = va, vb
    return a, b


EXACT_FG, EXACT_BG = 0.5, 0.25


def test_thresholds_and_weights_as_documented():
    a, b = two_member_maps()
    out = fuse_rules.fuse_maps([a, b], fuse_rules.member_weights(None, 2, 1), np.array([True]), EXACT_FG, EXACT_BG)[0, 0, :6]
    # c: 0.75 fg | 0.5 fg (inclusive) | 0.25 bg (inclusive) | 0.34375 ignore | 0 bg | 0.5 fg
    assert out["mask"].tolist() == [FOREGROUND, FOREGROUND, BACKGROUND, IGNORE, BACKGROUND, FOREGROUND]
    # both vote fg | one of two | one of two (0.375 abstains) | ignore -> 0 | both bg | one fg (0.4375 abstains)
    assert out["weight"].tolist() == [WEIGHT_SCALE, 128, 128, 0, WEIGHT_SCALE, 128]
    assert out["consensus"].astype(float).tolist() == [0.75, 0.5, 0.25, 0.34375, 0.0, 0.5]
    no_consensus = fuse_rules.fuse_maps([a, b], fuse_rules.member_weights(None, 2, 1), np.array([True]), EXACT_FG, EXACT_BG,
                                  keep_consensus=False)
    assert no_consensus.dtype.names == ("mask", "weight") and no_consensus["mask"][0, 0, :6].tolist() == out["mask"].tolist()


def float16_rows(width: int, seed: int) -> np.ndarray:
    """Rows that exercise the q99 selection: ties, all-negative, subnormals, a lone spike, wide range."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((7, width)).astype(np.float16)
    rows[0] = 0.0
    rows[1] = -np.abs(rows[1])
    rows[2] = (np.abs(rows[2]) * 1e-6).astype(np.float16)  # float16 subnormals
    rows[3] = 0.0
    rows[3, 0] = 1.0
    rows[4] = (rng.random(width) * 60000).astype(np.float16)
    rows[5] = np.round(rows[5] * 4) / 4  # many ties
    return rows


@pytest.mark.parametrize("width", [1, 2, 100, 101, 4096, 50176])
def test_q99_equals_numpy_quantile_of_the_positive_part(width):
    rows = float16_rows(width, width)
    expected = np.quantile(np.maximum(rows.astype(np.float32), 0), 0.99, axis=1)
    np.testing.assert_allclose(q99_of_maps(rows[:, None, :]), expected, rtol=1e-6, atol=0)


def test_float16_decoding_is_exact_for_every_value_up_to_one():
    """The kernel decodes float16 bits itself; with q99 = 1, n is the decoded value (subnormals included)."""
    every = np.arange(0x3C01, dtype=np.uint16).view(np.float16)  # +0 ... 1.0, all 15,361 values
    n = fuse_rules.normalise(every[None, None, :], q99=np.array([1.0], np.float32))
    assert np.array_equal(n[0, 0], every.astype(np.float32))
    negative = fuse_rules.normalise(-every[None, None, 1:], q99=np.array([1.0], np.float32))
    assert not negative.any()


def test_q99_treats_nan_as_zero_and_inf_as_the_largest_float16():
    row = np.zeros((1, 1, 200), np.float16)
    row[0, 0, :3] = [np.inf, np.nan, -np.inf]
    assert q99_of_maps(row)[0] == np.float32(0.0)  # rank 197 of 200 is a zero
    row[0, 0, 3:6] = np.inf
    assert q99_of_maps(row)[0] == np.float32(np.finfo(np.float16).max)


def test_q99_refuses_float32_maps():
    with pytest.raises(TypeError, match="float16"):
        q99_of_maps(np.zeros((1, 4, 4), np.float32))


def test_bad_image_and_sparse_map():
    a, b = two_member_maps()
    sparse = np.zeros((1, 10, 10), np.float16)
    sparse[0, 0, 0] = 0.01  # fewer than 1% positive pixels: q99 = 0, n = 1 where positive
    assert fuse_rules.normalise(sparse)[0, 0, 0] == 1.0 and fuse_rules.normalise(sparse).sum() == 1.0
    out = fuse_rules.fuse_maps([a, b], fuse_rules.member_weights(None, 2, 1), np.array([False]), FG, BG)
    assert (out["mask"] == IGNORE).all() and (out["weight"] == 0).all() and np.isnan(out["consensus"]).all()


def test_probability_weighting():
    a, b = two_member_maps()
    weights = fuse_rules.member_weights(np.array([[0.9], [0.1]]), 2, 1)
    np.testing.assert_allclose(weights[:, 0], [0.9, 0.1])
    out = fuse_rules.fuse_maps([a, b], weights, np.array([True]), EXACT_FG, EXACT_BG)[0, 0, :6]
    # pixel 1: c = 0.9*0.875 + 0.1*0.125 = 0.8 -> fg, agreement 0.9; pixel 3: 0.36875 ignore; pixel 5: 0.45 ignore
    np.testing.assert_allclose(out["consensus"][1], 0.8, atol=1e-3)
    assert out["mask"][[1, 3, 5]].tolist() == [FOREGROUND, IGNORE, IGNORE]
    assert out["weight"][1] == round(0.9 * WEIGHT_SCALE)
    # all probabilities zero: uniform
    np.testing.assert_allclose(fuse_rules.member_weights(np.zeros((2, 1)), 2, 1)[:, 0], [0.5, 0.5])


def shard_files(store):
    root = store / "pssl" / "mask" / "c"
    return {p.parent.parent.name: p.stat().st_mtime_ns for p in root.glob("*/0/0")}


def test_resume_fuses_only_the_rest_and_matches_fresh_run(tmp_path):
    fresh, resumed = tmp_path / "fresh.zarr", tmp_path / "resumed.zarr"
    for store in (fresh, resumed):
        make_synthetic_store(store, 10, map_size=16, shard=4, explained=store == fresh, seed=5)
    fuse.run(config(), fresh)

    group = open_store(resumed)
    for model in group.attrs["models"]:
        mark_done(group, "explain", model, 0)
    mark_done(group, "explain", "net_a", 1)  # shard 1 is explained by one model only: not ready
    first = fuse.run(config(), resumed)
    assert (first["shards_fused"], first["shards_waiting_for_explain"]) == (1, 2)
    before = shard_files(resumed)
    assert set(before) == {"0"}

    for model in group.attrs["models"]:
        for shard in (1, 2):
            mark_done(group, "explain", model, shard)
    second = fuse.run(config(), resumed)
    assert (second["shards_fused"], second["shards_already_done"]) == (2, 1)
    assert shard_files(resumed)["0"] == before["0"]  # the done shard was not rewritten
    a, b = open_store(fresh), open_store(resumed)
    for name in (MASK, WEIGHT, CONSENSUS):
        assert np.array_equal(a[name][:], b[name][:], equal_nan=True), name


def test_flagged_shard_is_trusted_and_skipped(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    group = open_store(store)
    fuse.run(config(), store)
    group[MASK][4:8] = 7  # a marker a re-run would overwrite if it fused shard 1 again
    summary = fuse.run(config(), store)
    assert summary["shards_fused"] == 0
    assert (group[MASK][4:8] == 7).all()


def test_changed_config_refused_unless_overwrite(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    fuse.run(config(), store)
    with pytest.raises(fuse.FuseConfigError, match="fg_threshold"):
        fuse.run(config(fg_threshold=0.6), store)
    with pytest.raises(fuse.FuseConfigError, match="members"):
        fuse.run(config(explainers=["gradcam"]), store)
    summary = fuse.run(config(fg_threshold=0.6, write_consensus=False, overwrite=True), store)
    assert summary["shards_fused"] == 2
    group = open_store(store)
    assert group.attrs["fuse"]["fg_threshold"] == 0.6 and CONSENSUS not in group
    assert fuse.run(config(fg_threshold=0.6, write_consensus=False), store)["shards_fused"] == 0


@pytest.mark.parametrize("bad, message", [
    ({"fg_threshold": 0.2, "bg_threshold": 0.5}, "bg_threshold < fg_threshold"),
    ({"models": ["nope"]}, "nope"),
    ({"threshold_rule": "triangle"}, "threshold_rule: unknown rule 'triangle'"),
    ({"otsu_range": [0.6, 0.2]}, "otsu_range must be"),
    ({"smooth": {"lime": 0.01}}, "fuse.smooth maps explainers"),
    ({"crf": {"iterations": 0}}, "fuse.crf.iterations"),
    ({"refine": "bilateral"}, "refine: unknown rule 'bilateral'"),
])
def test_bad_config_is_named(tmp_path, bad, message):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 4, map_size=8, shard=4)
    with pytest.raises(ConfigError, match=message):
        fuse.run(config(**bad), store)


def test_a_refused_section_writes_nothing_and_an_empty_one_fuses_with_the_schema_defaults(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 4, map_size=8, shard=4)
    with pytest.raises(ConfigError, match="fuse: needs bg_threshold < fg_threshold, got bg=0.5, fg=0.45"):
        fuse.run({"fuse": {"bg_threshold": 0.5}}, store)  # fg_threshold: the default
    with pytest.raises(ConfigError, match=r"fuse.combine=object_regions needs an object map and the store has none: "
                                          r"set explain.objectness .* or fuse.combine=none"):
        fuse.run({}, store)  # the default rule reads the object model's maps, which this store lacks
    assert not os.path.exists(store / "pssl")
    fuse.run({"fuse": {"combine": "none"}}, store)
    recorded = open_store(store).attrs["fuse"]
    assert recorded == fuse.FusePlan.from_recorded(recorded).recorded()
    assert {k: recorded[k] for k in FuseRule.model_fields} == FuseRule(combine="none").model_dump()


def test_stored_q99_and_computed_q99_give_identical_labels(tmp_path):
    """Stores made before the q99 arrays existed (or with some entries unset) fuse to the same labels."""
    stored, computed = tmp_path / "stored.zarr", tmp_path / "computed.zarr"
    for store in (stored, computed):
        make_synthetic_store(store, 10, map_size=16, shard=4, noise=1.0, seed=3)
    group = open_store(computed)
    group[q99_name("net_a", "gradcam")][:] = np.nan  # not stored (a store upgraded from format 1)
    group[q99_name("net_b", "smoothgrad")][2:7] = np.nan
    for store in (stored, computed):
        fuse.run(config(), store)
    a, b = open_store(stored), open_store(computed)
    for name in (MASK, WEIGHT, CONSENSUS):
        assert np.array_equal(a[name][:], b[name][:], equal_nan=True), name


def test_image_consensus_is_recomputed_when_not_stored(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 6, map_size=16, shard=4, noise=1.0, bad=(4,), seed=2)
    fuse.run(config(weight_by_probability=True, write_consensus=True), store)
    group = open_store(store)
    stored = [fuse.image_consensus(group, i) for i in range(6)]
    del group[CONSENSUS]
    for i in range(6):
        np.testing.assert_allclose(fuse.image_consensus(group, i), stored[i], atol=1e-3, equal_nan=True)
    assert np.isnan(stored[4]).all()


def test_consensus_is_not_stored_by_default(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 4, map_size=16, shard=4)
    fuse.run({"fuse": {"fg_threshold": FG, "bg_threshold": BG, "combine": "none"}}, store)
    group = open_store(store)
    assert CONSENSUS not in group and group.attrs["fuse"]["write_consensus"] is False
    assert MASK in group and WEIGHT in group


CRF = {"temperature": 0.1, "iterations": 5, "smooth_xy": 0.02, "smooth_weight": 3, "appearance_xy": 0.3,
       "appearance_rgb": 13, "appearance_weight": 10}
EXPLAINERS = ["gradcam", "smoothgrad"]


def rule(**extra):
    return FuseRule(**{"fg_threshold": 0.4, "bg_threshold": 0.2, "refine": "none", "combine": "none", **extra})


def fused(maps, q99, settings, explainers=EXPLAINERS, **inputs):
    """fuse_image on each image of [M, B, S, S] maps and [M, B] q99, stacked back to [B, S, S] per field."""
    out = [fuse_rules.fuse_image(maps[:, i], q99[:, i], explainers, settings, **inputs) for i in range(maps.shape[1])]
    return {field: np.stack([getattr(f, field) for f in out]) for field in ("mask", "weight", "consensus")}


def test_otsu_splits_each_image_between_its_own_two_modes():
    """Two values per image: every split between them separates the modes equally well, and the first one wins,
    the upper edge of the low value's histogram bin (64 bins on [0, 1]): 0.1 lies in bin 6, so 7/64;
    0.02 in bin 1, so 2/64. Clipped to [0.25, 0.5], both become 0.25."""
    consensus = np.array([[0.1] * 70 + [0.8] * 30, [0.02] * 90 + [0.3] * 10], np.float32)
    fg = [fuse_rules.otsu_threshold(c, rule(threshold_rule="otsu")) for c in consensus]
    assert fg == [7 / 64, 2 / 64]  # each image's own split, not one global tau
    clipped = [fuse_rules.otsu_threshold(c, rule(threshold_rule="otsu", otsu_range=[0.25, 0.5])) for c in consensus]
    assert clipped == [0.25, 0.25]


def test_otsu_fuse_run_splits_every_image_at_its_own_threshold(tmp_path):
    """The stage applies the rule per image (the rule's values are pinned by hand above): each image's mask is
    its own consensus split at its own threshold, and the thresholds differ between images."""
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 6, map_size=16, shard=3, noise=0.8)
    fuse.run(config(threshold_rule="otsu", bg_threshold=0.25), store)
    group = open_store(store)
    settings = fuse.recorded_plan(group).rule
    thresholds = set()
    for i in range(6):
        consensus = fuse.image_consensus(group, i)
        fg = fuse_rules.otsu_threshold(consensus.ravel(), settings)
        thresholds.add(fg)
        bg = fg * 0.25 / FG  # the configured bg / fg ratio
        expected = np.where(consensus >= fg, FOREGROUND, np.where(consensus <= bg, BACKGROUND, IGNORE))
        near = (np.abs(consensus - fg) < 2e-3) | (np.abs(consensus - bg) < 2e-3)  # float16 consensus
        assert np.array_equal(group[MASK][i][~near], expected[~near])
    assert len(thresholds) > 1


def test_smoothing_blurs_only_the_named_explainer_before_normalising():
    rng = np.random.default_rng(0)
    a, b = (rng.random((2, 12, 12)).astype(np.float16) for _ in range(2))
    weights = fuse_rules.member_weights(None, 2, 2)
    ok = np.array([True, True])
    stored_q99 = np.stack([q99_of_maps(a), q99_of_maps(b)])
    smoothed = fused(np.stack([a, b]), stored_q99, rule(smooth={"smoothgrad": 0.1}))
    blurred = fuse_rules.smooth_maps(b, 0.1)
    assert not np.array_equal(blurred, b)
    # the blurred member's stored q99 no longer applies: it is recomputed from the blurred map
    expected = fuse_rules.fuse_maps([a, blurred], weights, ok, 0.4, 0.2)
    assert np.array_equal(smoothed["mask"], expected["mask"]) and np.array_equal(smoothed["weight"], expected["weight"])


def test_crf_pulls_a_spilled_consensus_back_to_the_colour_edge():
    size = 32
    image = np.zeros((size, size, 3), np.uint8)
    image[:, :16] = (200, 40, 40)
    image[:, 16:] = (40, 40, 200)
    maps = np.zeros((1, 1, size, size), np.float16)
    maps[0, 0, :, :21] = 1.0  # the explanation spills 5 columns past the object's edge at column 16
    maps[0, 0, :, 16:21] = 0.6
    q99 = np.full((1, 1), np.nan, np.float32)
    plain = fused(maps, q99, rule(), ["gradcam"])
    refined = fused(maps, q99, rule(refine="crf", crf=CRF), ["gradcam"], image=image)
    truth = np.zeros((size, size), bool)
    truth[:, :16] = True

    def iou(mask):
        return ((mask == FOREGROUND) & truth).sum() / ((mask == FOREGROUND) | truth).sum()
    assert iou(refined["mask"][0]) > iou(plain["mask"][0]) + 0.1
    assert set(np.unique(refined["mask"])) <= {BACKGROUND, FOREGROUND, IGNORE}
    assert (refined["weight"][refined["mask"] == IGNORE] == 0).all() and refined["weight"].max() == WEIGHT_SCALE


def test_crf_fuse_run_writes_valid_labels_and_reads_unreadable_images_as_grey(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 4, map_size=16, shard=2, noise=0.5, bad=(1,))
    fuse.run(config(refine="crf", crf=CRF), store)
    group = open_store(store)
    mask, weight = group[MASK][:], group[WEIGHT][:]
    assert (mask[1] == IGNORE).all() and (weight[1] == 0).all()
    assert set(np.unique(mask[[0, 2, 3]])) <= {BACKGROUND, FOREGROUND, IGNORE}
    assert (weight[mask == IGNORE] == 0).all() and (weight[[0, 2, 3]][mask[[0, 2, 3]] != IGNORE] > 0).any()


def objectness_gate(consensus, normalised, objectness, image, thresholds, settings):
    """A combination rule for the test: foreground where the members say so and an object is seen."""
    fg, bg = thresholds
    is_fg = (consensus >= fg) & (objectness >= 0.5)
    is_bg = (consensus <= bg) | (objectness < 0.1)
    mask = np.where(is_fg, FOREGROUND, np.where(is_bg, BACKGROUND, IGNORE))
    agree = (normalised >= fg).mean(axis=0)
    return mask, np.where(mask == IGNORE, 0, np.rint(agree * WEIGHT_SCALE))


def test_a_new_combination_rule_is_one_function_and_one_registry_entry(monkeypatch):
    monkeypatch.setitem(fuse_rules.COMBINATIONS, "objectness_gate", objectness_gate)
    section = {"fg_threshold": 0.4, "bg_threshold": 0.2, "combine": "objectness_gate"}
    settings = fuse.pipeline_config({"fuse": section}).fuse.rule()  # the schema knows it through the registry
    with pytest.raises(ConfigError, match="did you mean 'objectness_gate'"):
        fuse.pipeline_config({"fuse": {**section, "combine": "objectness_gat"}})
    maps = np.zeros((2, 1, 8, 8), np.float16)
    maps[:, 0, :, :4] = 1.0  # both members see the left half
    objectness = np.zeros((8, 8), np.float32)
    objectness[:4, :] = 1.0  # the object is the top half
    image = np.zeros((8, 8, 3), np.uint8)
    out = fused(maps, np.full((2, 1), np.nan, np.float32), settings, image=image, objectness=objectness)
    assert (out["mask"][0, :4, :4] == FOREGROUND).all() and (out["mask"][0, 4:, :] == BACKGROUND).all()
    assert (out["mask"][0, :4, 4:] == BACKGROUND).all() and (out["weight"][0, :4, :4] == WEIGHT_SCALE).all()
    with pytest.raises(fuse_rules.FuseRuleError, match="needs an objectness map"):
        fused(maps, np.full((2, 1), np.nan, np.float32), settings, image=image)
