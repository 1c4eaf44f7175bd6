"""The shipped workload tables are exactly what the importer derives from ../shared, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import CliRun
from hybridsim.simulator.workload.alpaca_import import import_alpaca
from hybridsim.simulator.workload.datasets import DATA_DIR

from hybridsim.core.errors import HybridsimError

SHIPPED = ("alpaca.csv", "alpaca-gpt4-sample.csv", "PROVENANCE.md")


def test_reimport_reproduces_shipped_files_byte_for_byte(shared_dir: Path, tmp_path: Path) -> None:
    written = import_alpaca(shared_dir / "data" / "alpaca", tmp_path)
    assert sorted(path.name for path in written) == sorted(SHIPPED)
    for name in SHIPPED:
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_a_changed_source_is_refused(shared_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "alpaca"
    shutil.copytree(shared_dir / "data" / "alpaca", source)
    table = source / "token-lengths.csv"
    table.chmod(0o644)
    lines = table.read_text().splitlines()
    lines[1] = "0,11,9999"  # one record longer than any in the published statistics
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(HybridsimError, match="summary.json"):
        import_alpaca(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_workload_cli_show_plot_and_import(hybridsim: CliRun, shared_dir: Path, tmp_path: Path) -> None:
    shown = hybridsim("workload", "show", "alpaca-gpt4-sample", "--plot", str(tmp_path / "fig3.png"))
    assert shown.returncode == 0, shown.stderr
    assert "GPT-4" in shown.stdout and "169.98" in shown.stdout
    assert (tmp_path / "fig3.png").stat().st_size > 1000
    imported = hybridsim(
        "workload", "import-alpaca", str(shared_dir / "data" / "alpaca"), "--out", str(tmp_path / "tables")
    )
    assert imported.returncode == 0, imported.stderr
    assert (tmp_path / "tables" / "alpaca.csv").read_bytes() == (DATA_DIR / "alpaca.csv").read_bytes()
    unknown = hybridsim("workload", "show", "nope")
    assert (
        unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "unknown workload" in unknown.stderr
    )
