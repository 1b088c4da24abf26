"""Reading the tables: a malformed file or row is one CompositeError naming it, never a traceback."""
from __future__ import annotations

import pytest

from benchmarks.composite.tables import CompositeError, field, read_rows, split_field, unique


def test_read_rows_names_the_file_that_is_not_a_table(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("stamps: [1, 2]\n")
    with pytest.raises(CompositeError, match="list of mappings"):
        read_rows(path, "stamps")
    path.write_text("other: []\n")
    with pytest.raises(CompositeError, match="t.yaml: not a table with a `stamps` list"):
        read_rows(path, "stamps")
    with pytest.raises(CompositeError, match="missing.yaml"):
        read_rows(tmp_path / "missing.yaml", "stamps")


def test_fields_are_typed_and_splits_named():
    assert field({"crop": [0, 1]}, "crop", list, "row 1") == [0, 1]
    with pytest.raises(CompositeError, match="row 3: `use` must be bool"):
        field({"use": "yes"}, "use", bool, "row 3")
    with pytest.raises(CompositeError, match="row 3: `class_id` must be int"):
        field({"class_id": True}, "class_id", int, "row 3")
    with pytest.raises(CompositeError, match="missing `split`"):
        split_field({}, "row 4")
    with pytest.raises(CompositeError, match="split 'test' is not one of tuning, heldout"):
        split_field({"split": "test"}, "row 4")


def test_unique_names_the_repeated_entry(tmp_path):
    unique(["a", "b"], "stamp", tmp_path)
    with pytest.raises(CompositeError, match="stamp 'a' appears twice"):
        unique(["a", "b", "a"], "stamp", tmp_path)
