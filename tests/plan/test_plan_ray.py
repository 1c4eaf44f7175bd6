"""A plan on a Ray cluster gives the same tables, byte for byte, as on local worker processes.

The test starts its own Ray head on 127.0.0.1 with 2 CPUs, sends the plan to it through the CLI (a second
driver joining with --address, as an operator would), and stops the head. Skipped without Ray.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hybridsim.simulator.scenario.loader import run_scenario

from .test_plan import write_plan

ray = pytest.importorskip("ray")


@pytest.fixture
def ray_head() -> Iterator[str]:
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_backend_gives_byte_identical_tables(tmp_path: Path, ray_head: str) -> None:
    plan = write_plan(tmp_path, search={"method": "optuna", "trials": 8, "batch": 4, "seed": 2})
    run_scenario(plan, tmp_path / "local")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hybridsim.cli import main; main()",
            "run",
            str(plan),
            "--out",
            str(tmp_path / "ray"),
            "--backend",
            "ray",
            "--address",
            ray_head,
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for name in ("candidates.csv", "candidates.parquet", "runs.csv", "summary.json", "pareto.png"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
