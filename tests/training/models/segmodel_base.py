"""Shared checks every segmentation network must pass; each architecture subclasses this."""
from __future__ import annotations

import pytest
import torch

from training.models import SegOutputs, create_model

NUM_CLASSES = 4


class SegModelContract:
    """Subclasses set `name`, `has_detail` and `num_heads` (main + auxiliary)."""

    name: str
    has_detail: bool
    num_heads: int = 3

    @pytest.fixture(scope="class")
    def model(self):
        torch.manual_seed(0)
        return create_model(self.name, NUM_CLASSES)

    def test_train_mode_returns_every_head_at_input_size_and_backpropagates(self, model):
        model.train()
        images = torch.randn(2, 3, 64, 64)
        out = model(images)
        assert isinstance(out, SegOutputs)
        assert len(out.logits) == self.num_heads
        assert all(logits.shape == (2, NUM_CLASSES, 64, 64) for logits in out.logits)
        assert (out.detail is not None) == self.has_detail
        if self.has_detail:
            assert out.detail.shape[:2] == (2, 1)
        model.zero_grad()
        loss = sum(logits.square().mean() for logits in out.logits)
        if out.detail is not None:
            loss = loss + out.detail.mean()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None for g in grads), "every parameter takes part in training"
        assert all(torch.isfinite(g).all() for g in grads)

    def test_eval_mode_returns_main_logits_only(self, model):
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 96, 64))
        assert isinstance(out, torch.Tensor)
        assert out.shape == (1, NUM_CLASSES, 96, 64)

    @pytest.mark.parametrize("height,width", [(33, 97)])
    def test_sizes_not_multiple_of_32_work(self, model, height, width):
        model.train()
        out = model(torch.randn(2, 3, height, width))
        assert all(logits.shape[-2:] == (height, width) for logits in out.logits)
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, height, width)).shape[-2:] == (height, width)
