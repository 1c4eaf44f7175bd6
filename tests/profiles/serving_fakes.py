"""A small synthetic serving profile (prefill and decode tables over batch sizes 1, 4, 16) for tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybridsim.core.profile_io import save_profile_dir
from hybridsim.core.profile_model import Profile, ProfileMetadata, ServingTables

BATCHES = (1, 4, 16)
PER_REQUEST = (16, 64, 256)
GPU_W, CPU_W = 300.0, 50.0


def _rows(keys: tuple[str, str], time_of: object) -> pd.DataFrame:
    rows = []
    for batch in BATCHES:
        for per_request in PER_REQUEST:
            tokens = batch * per_request
            time_s = time_of(batch, tokens)  # type: ignore[operator]
            rows.append(
                {
                    keys[0]: batch,
                    keys[1]: tokens,
                    "n_trials": 5,
                    "time_s_mean": time_s,
                    "time_s_std": 0.01 * time_s,
                    "cpu_energy_j_mean": CPU_W * time_s,
                    "gpu_energy_j_mean": GPU_W * time_s,
                    "energy_j_mean": (CPU_W + GPU_W) * time_s,
                    "energy_j_std": 0.01 * (CPU_W + GPU_W) * time_s,
                    "status": "ok",
                }
            )
    return pd.DataFrame(rows)


def serving_tables(kv_capacity_tokens: int = 100_000) -> ServingTables:
    return ServingTables(
        prefill=_rows(("batch_size", "prompt_tokens"), lambda b, t: 0.02 + 2e-5 * t + 1e-9 * t * t / b),
        decode=_rows(("batch_size", "context_tokens"), lambda b, t: 0.03 + 5e-4 * b + 1e-6 * t),
        kv_capacity_tokens=kv_capacity_tokens,
        kv_capacity_source="test: a made-up number",
        tensor_parallel=2,
        energy_source="measured",
        idle_power_w=60.0,
        idle_power_source="test",
        kv_capacity_derivation={"headroom_fraction": 0.1},
    )


def serving_profile(name: str = "fake-serving", points: pd.DataFrame | None = None) -> Profile:
    metadata = ProfileMetadata(
        system="Fake",
        device="fake GPU",
        model="fake-7b",
        dtype="bf16",
        meter="nvml",
        energy_scope="GPU and CPU",
        provenance="tests",
        date="2026-01-01",
    )
    from hybridsim.core.profile_model import POINT_COLUMNS

    return Profile(
        name=name,
        metadata=metadata,
        points=points if points is not None else pd.DataFrame(columns=list(POINT_COLUMNS)),
        serving=serving_tables(),
    )


def write_serving_profile(path: Path) -> Path:
    save_profile_dir(serving_profile(path.name), path)
    return path
