"""`serving: continuous` in a scenario: a hybrid cluster runs end to end, and bad
input is one line, exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hybridsim.simulator.scenario.loader import run_scenario

from hybridsim.core.errors import HybridsimError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
from serving_fakes import write_serving_profile  # noqa: E402


def scenario(tmp_path: Path, **gpu: object) -> Path:
    profile = write_serving_profile(tmp_path / "fake-serving")
    pool = {"profile": str(profile), "count": 2, "serving": "continuous", "max_num_seqs": 16, **gpu}
    data = {
        "kind": "simulation",
        "name": "batching",
        "seed": 3,
        "cluster": {"m1": {"profile": "m1-pro/llama2-7b", "count": 4}, "gpu": pool},
        "cost_model": {"out_of_range": "clamp"},
        "workload": {"dataset": "alpaca"},
        "max_tokens": 256,
        "arrival": {"process": "poisson", "rate": 2.0, "requests": 800},
        "policies": [
            {"policy": "all_on", "params": {"system": "gpu"}},
            {"policy": "input_threshold", "params": {"threshold": 32, "below": "m1", "above": "gpu"}},
        ],
        "slo": {"ttft_s": 2.0, "tbt_s": 0.2, "latency_s": 60.0},
        "workers": 1,
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_hybrid_cluster_with_a_batching_pool_runs_and_reports_tokens(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_scenario(scenario(tmp_path), out)
    summary = json.loads((out / "summary.json").read_text())
    first = summary["runs"][0]
    gpu = first["systems"]["gpu"]
    assert gpu["serving"]["batch_size"]["mean"] > 1 and gpu["serving"]["energy_per_output_token_j"] > 0
    assert set(first["slos"]["met"]) == {"ttft_s", "tbt_s", "latency_s"}
    assert first["throughput"]["arrival_window_rps"] > 0
    table = pq.read_table(out / "requests" / "all_on.parquet")
    assert table.num_rows == 800 and "ttft_s" in table.column_names
    assert "power_over_time.png" in summary["plots"] and (out / "power_over_time.png").stat().st_size > 0
    again = tmp_path / "again"
    run_scenario(scenario(tmp_path), again)
    assert (again / "summary.json").read_bytes() == (out / "summary.json").read_bytes()


@pytest.mark.parametrize(
    ("gpu", "profile", "message"),
    [
        ({"max_num_seqs": 0}, None, "cluster.gpu.max_num_seqs"),
        ({"kv_capacity_tokens": 300}, None, "cluster.gpu.kv_capacity_tokens"),
        ({"max_num_batched_tokens": 16}, None, "cluster.gpu.max_num_batched_tokens"),
        ({"max_num_batched_tokens": 8, "chunked_prefill": True}, None, "cluster.gpu.max_num_batched_tokens"),
        ({}, "m1-pro/llama2-7b", "cluster.gpu.serving"),
        ({"queue": "shared"}, None, "cluster.gpu"),
    ],
)
def test_bad_batching_input_is_one_line_exit_2_nothing_written(
    tmp_path: Path, gpu: dict, profile: str | None, message: str
) -> None:
    path = scenario(tmp_path, **gpu)
    if profile is not None:
        data = yaml.safe_load(path.read_text())
        data["cluster"]["gpu"]["profile"] = profile
        path.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hybridsim.cli import main; main()",
            "run",
            str(path),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_chunked_prefill_in_the_yaml_reaches_the_engine(tmp_path: Path) -> None:
    """With a 64-token budget, prefill first is refused (no pass could read a long prompt); chunked prefill
    reads longer prompts in 64-token slices over several iterations, so their first token comes later than
    from one whole-prompt prefill pass."""
    with pytest.raises(HybridsimError, match=r"cluster\.gpu\.max_num_batched_tokens"):
        run_scenario(scenario(tmp_path, max_num_batched_tokens=64), tmp_path / "first")
    run_scenario(scenario(tmp_path, max_num_batched_tokens=64, chunked_prefill=True), tmp_path / "chunked")
    run_scenario(scenario(tmp_path), tmp_path / "whole")

    def long_prompt_ttft(out: str) -> float:
        table = pq.read_table(tmp_path / out / "requests" / "all_on.parquet").to_pandas()
        long = table[table["input_tokens"] > 64]
        assert len(long) > 10, len(long)
        return float(long["ttft_s"].mean())

    chunked, whole = long_prompt_ttft("chunked"), long_prompt_ttft("whole")
    assert chunked > 1.5 * whole, (chunked, whole)
