"""Tests of training/models/: every network through one shared contract (segmodel_base)."""
