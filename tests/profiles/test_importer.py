"""The Wilkins et al. 2024 importer: reproducible, faithful to the paper's numbers, quirks handled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hybridsim.simulator.profiles.registry import BUILTIN_DIR, list_builtin, load_profile
from hybridsim.simulator.profiles.wilkins2024 import MODELS
from hybridsim.simulator.profiles.wilkins2024_raw import UPSTREAM
from hybridsim.simulator.profiles.wilkins2024_systems import SYSTEMS

from hybridsim.cli import cli


def paper_derived() -> list[str]:
    """Built-ins this importer writes (the others, e.g. h100/*, were calibrated by hybridsim)."""
    return [name for name in list_builtin() if UPSTREAM in load_profile(name).metadata.provenance]


PUBLISHED = {  # reference README §5 table: alpha0..2, beta0..2, exactly as printed
    "m1-pro/llama2-7b": "-0.322916 4.644266 0.097094 -0.014961 0.366393 0.0071892",
    "swing-a100/llama2-7b": "-3.894991 31.522735 0.042712 -0.010021 0.083515 0.000107",
    "swing-a100/mistral-7b": "-3.124223 31.694194 0.035282 -0.0078001 0.081008 0.0000876",
    "swing-a100/falcon-7b": "-8.808288 41.282211 0.089089 -0.024520 0.107277 0.000242",
}
REFIT_NAMES = {
    ("M1-Pro", "Llama-2-7b-chat-hf"): "m1-pro/llama2-7b",
    ("Swing AMD+A100", "Llama-2-7b-chat-hf"): "swing-a100/llama2-7b",
    ("Swing AMD+A100", "Mistral-7B-v0.1"): "swing-a100/mistral-7b",
    ("Swing AMD+A100", "falcon-7b"): "swing-a100/falcon-7b",
}


@pytest.fixture(scope="module")
def regenerated(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("profiles")
    result = CliRunner().invoke(
        cli,
        ["profiles", "import-wilkins2024", str(shared_dir / "reference/wilkins2024/raw"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("wrote ") == 11
    return out


def test_regeneration_reproduces_the_shipped_profiles_byte_for_byte(regenerated: Path) -> None:
    shipped = sorted(
        p.relative_to(BUILTIN_DIR)
        for name in paper_derived()
        for p in (BUILTIN_DIR / name).iterdir()
        if p.is_file()
    )
    fresh = sorted(p.relative_to(regenerated) for p in regenerated.glob("*/*/*") if p.is_file())
    assert fresh == shipped and len(shipped) == 22
    for relative in shipped:
        assert (regenerated / relative).read_bytes() == (BUILTIN_DIR / relative).read_bytes(), relative


def test_refit_equals_the_published_coefficients(shared_dir: Path) -> None:
    refits = pd.read_csv(shared_dir / "reference/wilkins2024/derived/refit-coefficients.csv")
    for _, row in refits.iterrows():
        name = REFIT_NAMES.get((row["system"], row["model"]))
        if name is None:
            continue  # 13B, 70B, 40B and Mixtral have no built-in profile
        fit = load_profile(name).paper_fit
        assert fit is not None
        ours = (*fit.energy_coefficients, *fit.runtime_coefficients)
        theirs = [
            row[c]
            for c in (
                "alpha_0_t_in",
                "alpha_1_t_out",
                "alpha_2_t_in_t_out",
                "beta_0_t_in",
                "beta_1_t_out",
                "beta_2_t_in_t_out",
            )
        ]
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)
        assert (fit.r2_energy, fit.r2_runtime) == pytest.approx(
            (row["r2_energy"], row["r2_runtime"]), rel=1e-6
        )
        # and the README's table, to the precision it prints (half a unit in its last decimal)
        for value, printed in zip(ours, PUBLISHED[name].split(), strict=True):
            half_unit = 0.5 * 10.0 ** -len(printed.split(".")[1])
            assert abs(value - float(printed)) <= half_unit, (name, value, printed)
    assert {name for name in paper_derived() if load_profile(name).paper_fit} == set(PUBLISHED)


@pytest.mark.parametrize(
    ("name", "sweep", "bin_", "energy", "runtime"),
    [
        # reference README §7: energy per request (J, warm trials) and runtime (s, M1 minus the 2 s sleep)
        ("m1-pro/llama2-7b", "input", 8, 98, 7.5),
        ("swing-a100/llama2-7b", "input", 8, 141, 0.95),
        ("m1-pro/llama2-7b", "input", 1024, 2544, 128.0),
        ("palmetto-a100/llama2-7b", "input", 2048, 1893, None),
        ("palmetto-v100/llama2-7b", "input", 2048, 24680, None),
        ("m1-pro/llama2-7b", "output", 512, 12031, 713.0),
        ("swing-a100/llama2-7b", "output", 4096, 354015, 1304),
        ("palmetto-v100/llama2-7b", "output", 2048, 815442, None),
    ],
)
def test_points_match_the_papers_table(
    name: str, sweep: str, bin_: int, energy: float, runtime: float | None
) -> None:
    rows = load_profile(name).sweep(sweep)
    row = rows[rows["input_tokens_nominal" if sweep == "input" else "output_tokens"] == bin_].iloc[0]
    assert row["energy_j_mean"] == pytest.approx(energy, abs=max(1.0, 5e-4 * energy))
    if runtime is not None:
        assert row["runtime_s_mean"] == pytest.approx(runtime, rel=0.01)


def test_points_agree_with_the_reference_summaries(shared_dir: Path) -> None:
    """Every warm-trial mean, spread and count equals the reference's own aggregation (198 rows)."""
    derived = shared_dir / "reference/wilkins2024/derived"
    summaries = pd.concat([pd.read_csv(derived / f"{s}-sweep-summary.csv") for s in ("input", "output")])
    for _, expected in summaries.iterrows():
        points = load_profile(f"{SYSTEMS[expected['system']].key}/{MODELS[expected['model']]}").sweep(
            expected["sweep"]
        )
        bin_column = "input_tokens_nominal" if expected["sweep"] == "input" else "output_tokens"
        key = expected["input_tokens"] if expected["sweep"] == "input" else expected["output_tokens"]
        row = points[points[bin_column] == key].iloc[0]
        assert row["n_trials"] == expected["n_trials"]
        assert row["n_warmup_excluded"] == expected["n_warmup_excluded"]
        for ours, theirs in (
            ("runtime_s_mean_as_recorded", "runtime_s_mean"),
            ("energy_j_mean", "total_energy_j_mean"),
            ("energy_j_std", "total_energy_j_std"),
            ("total_tokens_mean", "total_tokens_mean"),
            ("cpu_energy_j_mean", "cpu_energy_j_mean"),
            ("gpu_energy_j_mean", "gpu_energy_j_mean"),
        ):
            assert row[ours] == pytest.approx(expected[theirs], rel=1e-5, abs=1e-6), (
                expected.to_dict(),
                ours,
            )


def test_quirks_are_handled_visibly() -> None:
    m1 = load_profile("m1-pro/llama2-7b")
    np.testing.assert_allclose(
        m1.points["runtime_s_mean_as_recorded"] - m1.points["runtime_s_mean"], 2.0, atol=1e-3
    )
    assert m1.sweep("input")["input_tokens"].tolist() == [9, 21, 38, 78, 154, 267, 541, 986, 2117]
    assert m1.sweep("input")["input_tokens_nominal"].tolist() == [8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    assert (m1.points["n_warmup_excluded"] >= 1).all()
    mistral = load_profile("swing-a100/mistral-7b").sweep("input")
    assert mistral["input_tokens"].tolist() == [8, 16, 33, 64, 128, 256, 512, 1024, 2048]  # prompt C actual
    swing = load_profile("swing-a100/llama2-7b")
    np.testing.assert_allclose(swing.points["runtime_s_mean_as_recorded"], swing.points["runtime_s_mean"])
    v100 = load_profile("palmetto-v100/falcon-7b").points
    assert sorted(v100.loc[v100["status"] == "oom", "sweep"]) == ["input", "output"]
    assert load_profile("palmetto-v100/mistral-7b").sweep("input")["cpu_energy_j_mean"].iloc[-1] < 0
    scopes = {load_profile(n).metadata.meter: load_profile(n).metadata.energy_scope for n in paper_derived()}
    assert "process's share" in scopes["powermetrics"] and "constant CPU power" in scopes["nvml+uprof"]
    assert "assumed idle power" in scopes["nvml+rapl"]
    assert len(paper_derived()) == 11
    for name in paper_derived():
        metadata = load_profile(name).metadata
        assert metadata.idle_power_w and "Not measured by the paper" in metadata.idle_power_source
        assert metadata.batch_size == 1 and metadata.kv_cache is False


def test_energy_per_token_pools_to_the_artifacts_per_bin_table(shared_dir: Path) -> None:
    """Trial-weighted EPT over models, per bin, is what the paper's threshold scripts build. They also drop
    iterations 10 and 20 (a '"0" in Phase' filter), hence the 0.5% tolerance."""
    table = pd.read_csv(shared_dir / "reference/wilkins2024/derived/threshold-inputs-per-bin.csv")
    for sweep, bin_column in (("input", "input_tokens_nominal"), ("output", "output_tokens")):
        expected = table[table["sweep"] == sweep].set_index("token_bin")
        for system, column in (
            ("m1-pro", "m1_energy_per_token_j"),
            ("swing-a100", "swing_energy_per_token_j"),
        ):
            rows = pd.concat(
                [load_profile(n).sweep(sweep) for n in list_builtin() if n.startswith(system + "/")]
            )
            weighted = (rows["energy_per_token_j_mean"] * rows["n_trials"]).groupby(rows[bin_column]).sum()
            pooled = weighted / rows["n_trials"].groupby(rows[bin_column]).sum()
            common = pooled.index.intersection(expected.index)
            assert len(common) >= 7
            np.testing.assert_allclose(pooled[common], expected.loc[common, column], rtol=5e-3)
