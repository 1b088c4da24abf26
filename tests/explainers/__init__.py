"""Tests of explainers/."""
