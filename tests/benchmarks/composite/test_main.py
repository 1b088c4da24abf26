"""The command line: a user's mistake is one `error:` line and exit 1."""
from __future__ import annotations

import pytest

from benchmarks.composite.__main__ import main


def test_sheet_of_an_unbuilt_folder_is_one_error_line(tmp_path, capsys):
    assert main(["sheet", str(tmp_path), str(tmp_path / "s.png")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "not a built split" in err[0]


def test_an_unknown_split_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["build", "out", "--split", "test"])
    assert stop.value.code == 2 and "invalid choice: 'test'" in capsys.readouterr().err


@pytest.mark.slow
def test_build_into_a_file_is_one_error_line(tmp_path, capsys):
    dest = tmp_path / "dest"
    dest.write_text("a file, not a folder")
    assert main(["build", str(dest), "--split", "heldout"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
