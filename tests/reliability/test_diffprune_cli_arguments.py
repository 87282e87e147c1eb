"""`deltamix diff inspect` rejects a missing file or a folder at parse time, and a bad file with a clean error."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.cli.main import main


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_inspect_needs_an_existing_file(kind: str, tmp_path: Path, capsys) -> None:
    target = tmp_path / "absent.safetensors" if kind == "missing" else tmp_path
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", "inspect", str(target)])
    assert exit_info.value.code == 2
    assert "argument FILE: file" in capsys.readouterr().err


def test_inspect_of_a_non_diff_file_is_a_clean_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x00" * 20)
    assert main(["diff", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deltamix: error: ") and str(path) in err and "Traceback" not in err
