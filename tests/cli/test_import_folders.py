"""The importers' `--out` follows the rule of every output folder: a folder of the user's files is refused
(one line, exit 2) unless `--overwrite`, a user's file is never replaced, even with `--overwrite`, and a
previous import of the same kind is hybridsim's to replace. Checked byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import CliRun

from hybridsim.core.output_guard import MARKER, read_marker

IMPORTS = {
    "import-alpaca": (("workload", "import-alpaca"), "data/alpaca", "alpaca.csv"),
    "import-wilkins2024": (
        ("profiles", "import-wilkins2024"),
        "reference/wilkins2024/raw",
        "m1-pro/llama2-7b/points.csv",
    ),
    "import-splitwise2024": (
        ("profiles", "import-splitwise2024"),
        "reference/splitwise2024/raw",
        "splitwise-a100/PROVENANCE.md",
    ),
}
"""Command -> (its words, its source under ../shared, one of the files it writes)."""


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too): relative path -> sha256 of its bytes."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("command", list(IMPORTS))
def test_an_import_never_costs_the_user_a_file(
    command: str, hybridsim: CliRun, shared_dir: Path, tmp_path: Path
) -> None:
    words, source, written = IMPORTS[command]

    def run(out: Path, *extra: str) -> tuple[int, str]:
        result = hybridsim(*words, str(shared_dir / source), "--out", str(out), *extra, cwd=tmp_path)
        return result.returncode, result.stderr

    mine = tmp_path / "mine"
    (mine / Path(written).parent).mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes\n")
    (mine / written).write_text("my own table, not hybridsim's\n")
    before = snapshot(mine)

    # A folder of the user's files: refused; with --overwrite, still refused where a name is taken.
    for extra in ((), ("--overwrite",)):
        code, stderr = run(mine, *extra)
        assert code == 2 and stderr.count("\n") == 1 and stderr.startswith(f"error: --out {mine}: "), stderr
        assert snapshot(mine) == before  # no byte of theirs changed, nothing of ours added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left beside it

    # Without the clash, --overwrite writes hybridsim's files beside the user's, never over them.
    (mine / written).unlink()
    del before[written]
    code, stderr = run(mine, "--overwrite")
    assert code == 0, stderr
    after = snapshot(mine)
    assert {name: after[name] for name in before} == before
    assert written in after and MARKER in after

    # A previous import of the same kind is hybridsim's: replaced, byte-identical, no --overwrite needed.
    fresh = tmp_path / "fresh"
    assert run(fresh)[0] == 0
    first = snapshot(fresh)
    code, stderr = run(fresh)
    assert code == 0, stderr
    assert snapshot(fresh) == first
    marker = read_marker(fresh)
    assert marker is not None and sorted(marker[1]) == sorted(set(first) - {MARKER})
    assert {name: first[name] for name in after if name in first and name != MARKER} == {
        name: after[name] for name in after if name in first and name != MARKER
    }  # the same files whether written beside the user's or into a folder of their own
