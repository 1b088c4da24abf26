"""Checks against PaddleSeg itself (make test-parity)."""
