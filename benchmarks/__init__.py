"""Measurements of the project: speed and memory benchmarks, and the known-answer world (known_answer/)."""
