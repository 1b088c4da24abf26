"""The combination rules (pipeline/fuse/object_rules.py) on hand-made scenes: photo, consensus and object map."""
from __future__ import annotations

import numpy as np
import pytest

from core.schema import FuseRule, ObjectRuleSection
from core.store import BACKGROUND, FOREGROUND, IGNORE, WEIGHT_SCALE
from pipeline.fuse.rules import COMBINATIONS
from pipeline.fuse.object_rules import object_support

S = 64
CRF = {"temperature": 0.05, "iterations": 5, "smooth_xy": 0.015, "smooth_weight": 1, "appearance_xy": 0.3,
       "appearance_rgb": 8, "appearance_weight": 10}
THRESHOLDS = (0.3, 0.15)
GREY, BROWN, BLUE, GREEN = (110, 110, 110), (150, 80, 40), (40, 60, 200), (60, 170, 60)


class Scene:
    """A photo with flat-coloured objects, the ensemble's consensus and the object model's map."""

    def __init__(self):
        self.image = np.zeros((S, S, 3), np.uint8)
        self.image[:] = GREY
        self.consensus = np.full((S, S), 0.02, np.float32)
        self.objectness = np.full((S, S), 0.02, np.float32)

    def object(self, rows: slice, cols: slice, colour, salient: float = 0.95, evidence: float | None = None):
        self.image[rows, cols] = colour
        self.objectness[rows, cols] = salient
        if evidence is not None:
            self.consensus[rows, cols] = evidence
        return self

    def evidence(self, rows: slice, cols: slice, value: float):
        self.consensus[rows, cols] = value
        return self

    def fuse(self, rule: str, **objectness):
        settings = FuseRule(fg_threshold=THRESHOLDS[0], bg_threshold=THRESHOLDS[1], refine="crf", crf=CRF, combine=rule,
                            objectness=ObjectRuleSection(**objectness))
        return COMBINATIONS[rule](self.consensus, self.consensus[None], self.objectness, self.image, THRESHOLDS, settings)


def region(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((S, S), bool)
    mask[rows, cols] = True
    return mask


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    fg = mask == FOREGROUND
    return (fg & truth).sum() / (fg | truth).sum()


RULES = sorted(COMBINATIONS)


@pytest.mark.parametrize("rule", RULES)
def test_the_object_takes_its_whole_extent_from_the_object_map(rule):
    """The CAM covers the object's discriminative third; the mask covers the whole object, nothing else."""
    sofa = (slice(16, 48), slice(8, 56))
    scene = Scene().object(*sofa, BROWN, evidence=0.15).evidence(slice(20, 40), slice(12, 28), 0.7)
    mask, weight = scene.fuse(rule)
    assert iou(mask, region(*sofa)) > 0.95
    assert (mask[region(*sofa)] == FOREGROUND).mean() > 0.95
    assert (weight[mask == FOREGROUND] > 0.8 * WEIGHT_SCALE).mean() > 0.9  # both sources agree: confident
    assert (weight[~region(*sofa)] > 0.8 * WEIGHT_SCALE).mean() > 0.9


@pytest.mark.parametrize("rule", RULES)
def test_a_salient_object_of_another_class_in_front_of_the_target_is_not_the_class(rule):
    """People on the sofa: one joined object region; the person carries no sofa evidence and is dropped."""
    sofa, person = (slice(20, 52), slice(4, 60)), (slice(8, 44), slice(24, 40))
    scene = Scene().object(*sofa, BROWN, evidence=0.25).object(*person, BLUE, evidence=0.01)
    scene.evidence(slice(30, 50), slice(6, 20), 0.8)
    mask, weight = scene.fuse(rule)
    visible_sofa = region(*sofa) & ~region(*person)
    assert (mask[region(*person)] == FOREGROUND).mean() < 0.05
    assert (mask[visible_sofa] == FOREGROUND).mean() > 0.9
    person_bg = region(*person) & (mask == BACKGROUND)
    assert weight[person_bg].max() < 0.1 * WEIGHT_SCALE  # an object without class evidence: low weight


@pytest.mark.parametrize("rule", RULES)
def test_several_objects_of_the_class_are_all_kept(rule):
    left, right = (slice(10, 30), slice(4, 28)), (slice(34, 58), slice(36, 60))
    scene = Scene().object(*left, BROWN, evidence=0.2).object(*right, BROWN, evidence=0.2)
    scene.evidence(slice(14, 22), slice(8, 16), 0.8).evidence(slice(40, 50), slice(40, 50), 0.8)
    mask, _ = scene.fuse(rule)
    for box in (left, right):
        assert (mask[region(*box)] == FOREGROUND).mean() > 0.9


@pytest.mark.parametrize("rule", RULES)
def test_an_occluded_object_is_kept_on_both_sides_of_what_hides_it(rule):
    """A pole the object model does not find splits the object into two regions; both carry the class."""
    target, pole = (slice(20, 44), slice(6, 58)), (slice(0, S), slice(28, 34))
    scene = Scene().object(*target, BROWN, evidence=0.5)
    scene.object(*pole, GREEN, salient=0.05, evidence=0.02)
    mask, _ = scene.fuse(rule)
    visible = region(*target) & ~region(*pole)
    assert (mask[visible] == FOREGROUND).mean() > 0.9
    assert (mask[region(*pole)] == FOREGROUND).mean() < 0.2


def test_class_evidence_outside_any_object_is_ignore_in_the_region_rule():
    target = (slice(10, 40), slice(10, 40))
    scene = Scene().object(*target, BROWN, evidence=0.6).evidence(slice(48, 60), slice(48, 60), 0.7)
    mask, weight = scene.fuse("object_regions")
    assert (mask[48:60, 48:60] == IGNORE).all() and (weight[48:60, 48:60] == 0).all()
    assert (mask[region(*target)] == FOREGROUND).all()


def test_class_evidence_outside_any_object_has_low_weight_in_the_unary_rule():
    target = (slice(10, 40), slice(10, 40))
    scene = Scene().object(*target, BROWN, evidence=0.6).evidence(slice(48, 60), slice(48, 60), 0.7)
    mask, weight = scene.fuse("object_unary")
    outside = region(slice(48, 60), slice(48, 60))
    assert (weight[outside] < 0.2 * WEIGHT_SCALE).all()  # whatever the CRF decided there, nobody is sure
    assert (mask[region(*target)] == FOREGROUND).mean() > 0.95


@pytest.mark.parametrize("rule", RULES)
def test_when_the_object_model_found_another_object_the_consensus_decides(rule):
    """The astronaut photo: the salient object (a person) is not the class; the class lies elsewhere."""
    person, target = (slice(4, 60), slice(4, 30)), (slice(36, 52), slice(40, 56))
    scene = Scene().object(*person, BLUE, evidence=0.02)
    scene.image[target] = BROWN
    scene.evidence(*target, 0.8)
    mask, weight = scene.fuse(rule)
    assert iou(mask, region(*target)) > 0.8
    assert (mask[region(*person)] == FOREGROUND).mean() < 0.05
    assert weight[mask == FOREGROUND].max() < 0.2 * WEIGHT_SCALE  # the two sources disagree: low weight


def test_support_and_coverage_by_hand():
    """Two regions: one with mean evidence 0.6 (kept, support 1), one with 0.1 (dropped); coverage counts
    only the consensus foreground inside kept regions."""
    evidence = np.zeros((S, S), np.float32)
    objectness = np.zeros((S, S), np.float32)
    objectness[0:10, 0:10] = objectness[20:30, 20:30] = 1
    evidence[0:10, 0:6] = 1.0  # 60 % of the first region at full evidence
    evidence[20:30, 20:30] = 0.1
    evidence[50:60, 50:54] = 1.0  # 40 foreground pixels outside any object
    image = np.full((S, S, 3), 100, np.uint8)
    support, coverage = object_support(evidence, objectness, image, ObjectRuleSection(segments=0))
    assert (support[0:10, 0:10] == 1).all() and (support[20:30, 20:30] == 0).all() and support[50:, 50:].max() == 0
    assert coverage == pytest.approx(60 / 100)
