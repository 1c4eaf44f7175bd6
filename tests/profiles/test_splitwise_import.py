"""The Splitwise (ISCA 2024) importer: reproducible, faithful to the raw medians, its assumptions labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hybridsim.simulator.profiles.registry import BUILTIN_DIR, list_builtin_serving, load_profile
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model

from hybridsim.cli import cli
from hybridsim.core.output_guard import MARKER


def splitwise_builtins() -> list[str]:
    """The built-in serving profiles this importer wrote (others, e.g. derived_serving.py's, are not its)."""
    return [name for name in list_builtin_serving() if name.startswith("splitwise")]


SYSTEMS = {
    "a100-80gb": "splitwise-a100",
    "h100-80gb": "splitwise-h100",
    "h100-80gb-pcap": "splitwise-h100-pcap",
}
WATTS = {  # per GPU: prefill, decode, idle (power_model/constant.yaml; the cap at 70% of 700 W)
    "splitwise-a100": (400.0, 250.0, 63.0),
    "splitwise-h100": (700.0, 380.0, 75.0),
    "splitwise-h100-pcap": (490.0, 380.0, 75.0),
}


@pytest.fixture(scope="module")
def raw(shared_dir: Path) -> Path:
    return shared_dir / "reference/splitwise2024/raw"


@pytest.fixture(scope="module")
def regenerated(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serving-profiles")
    result = CliRunner().invoke(cli, ["profiles", "import-splitwise2024", str(raw), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("wrote ") == 12
    return out


def test_the_builtins_are_every_model_hardware_and_tp_in_the_source() -> None:
    expected = [f"{system}/llama2-70b-tp{tp}" for system in WATTS for tp in (2, 4, 8)]
    expected += [f"{system}/bloom-176b-tp8" for system in WATTS]
    assert splitwise_builtins() == sorted(expected)


def test_regeneration_reproduces_the_shipped_profiles_byte_for_byte(regenerated: Path) -> None:
    fresh = sorted(
        p.relative_to(regenerated) for p in regenerated.rglob("*") if p.is_file() and p.name != MARKER
    )  # the marker says the folder is a hybridsim import (the built-in folder is hybridsim's by being it)
    shipped = sorted(
        p.relative_to(BUILTIN_DIR)
        for system in WATTS
        for p in (BUILTIN_DIR / system).rglob("*")
        if p.is_file()
    )
    assert fresh == shipped and len(shipped) == 3 + 12 * 3  # PROVENANCE.md + 3 files per profile
    for relative in shipped:
        assert (regenerated / relative).read_bytes() == (BUILTIN_DIR / relative).read_bytes(), relative


def test_the_builtins_reproduce_the_raw_medians_at_measured_points(raw: Path) -> None:
    runs = pd.read_csv(raw / "perf_model.csv")
    checked = 0
    for (model, hardware, tp), group in runs.groupby(["model", "hardware", "tensor_parallel"]):
        profile = load_profile(f"{SYSTEMS[hardware]}/{model}-tp{tp}")
        assert profile.serving is not None
        cost = build_serving_cost_model(profile)
        prefill = group.groupby(["batch_size", "prompt_size"])["prompt_time"].median().reset_index()
        decode = (
            group.groupby(["batch_size", "prompt_size", "token_size"])["token_time"].median().reset_index()
        )
        kept = set(
            zip(profile.serving.prefill["batch_size"], profile.serving.prefill["prompt_tokens"], strict=True)
        )
        prefill = prefill[
            [(b, b * p) in kept for b, p in zip(prefill["batch_size"], prefill["prompt_size"], strict=True)]
        ]
        assert len(prefill) >= 12
        batch = prefill["batch_size"].to_numpy()
        np.testing.assert_allclose(
            cost.prefill(batch, batch * prefill["prompt_size"].to_numpy()).time_s,
            prefill["prompt_time"] / 1000,
            rtol=1e-5,
        )
        context = decode["batch_size"] * (decode["prompt_size"] + decode["token_size"] // 2)
        kept = set(
            zip(profile.serving.decode["batch_size"], profile.serving.decode["context_tokens"], strict=True)
        )
        keep = np.array([(b, c) in kept for b, c in zip(decode["batch_size"], context, strict=True)])
        assert keep.sum() >= 18
        np.testing.assert_allclose(
            cost.decode(decode["batch_size"][keep], context[keep]).time_s,
            decode["token_time"][keep] / 1000,
            rtol=1e-5,
        )
        checked += 1
    assert checked == 12


def test_the_power_assumption_is_named_and_energy_is_time_times_published_power() -> None:
    for name in splitwise_builtins():
        profile = load_profile(name)
        serving = profile.serving
        assert serving is not None
        prefill_w, decode_w, idle_w = WATTS[name.split("/")[0]]
        tp = serving.tensor_parallel
        assert serving.energy_modelled and "assumption" in serving.energy_source
        assert profile.metadata.estimated and "MODELLED" in profile.metadata.energy_scope
        assert any("ASSUMPTION" in note for note in profile.metadata.notes)
        np.testing.assert_allclose(
            serving.prefill["gpu_energy_j_mean"], serving.prefill["time_s_mean"] * tp * prefill_w, rtol=1e-5
        )
        np.testing.assert_allclose(
            serving.decode["energy_j_mean"], serving.decode["time_s_mean"] * tp * decode_w, rtol=1e-5
        )
        assert (serving.decode["cpu_energy_j_mean"] == 0).all()
        assert serving.idle_power_w == pytest.approx(tp * idle_w)


def test_kv_capacity_follows_from_its_written_out_derivation() -> None:
    for name in splitwise_builtins():
        serving = load_profile(name).serving
        assert serving is not None
        d = serving.kv_capacity_derivation
        free = d["device_memory_bytes"] * (1 - d["headroom_fraction"]) - d["weights_bytes"]
        assert serving.kv_capacity_tokens == int(free // d["kv_bytes_per_token"])
        assert d["device_memory_bytes"] == serving.tensor_parallel * 80 * 2**30
        # every measured decode batch fits in the cache it is said to have
        assert serving.decode["context_tokens"].max() <= serving.kv_capacity_tokens
    llama = load_profile("splitwise-a100/llama2-70b-tp8").serving
    assert llama is not None and llama.kv_capacity_derivation["kv_bytes_per_token"] == 2 * 80 * 8192 * 2 / 8


def test_batching_makes_a_decoded_token_cheaper() -> None:
    """The README's figure: Llama-2-70B on 8 A100s, 45 ms at batch 1 and 72 ms at batch 64 (prompt 512)."""
    cost = build_serving_cost_model(load_profile("splitwise-a100/llama2-70b-tp8"))
    one, many = cost.decode([1, 64], [576, 64 * 576]).time_s
    assert one == pytest.approx(0.0449, abs=5e-4) and many == pytest.approx(0.0716, abs=5e-4)
    per_token = cost.decode([1, 64], [576, 64 * 576]).energy_j / np.array([1, 64])
    assert per_token[0] / per_token[1] > 35
