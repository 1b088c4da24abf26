"""Benchmarks whose answer is known, to measure the pipeline against ground truth."""
