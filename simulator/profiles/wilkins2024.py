"""Built-in profiles from the raw measurements of Wilkins, Keshav & Mortier (e-Energy '24).

The paper ran one prompt at a time through HF transformers (no KV cache) on four machines and swept the
input length at 32 output tokens and the output length at one fixed prompt. This module turns those raw
trial tables into one profile per (system, model), handling every quirk the reference README documents,
visibly (a column or a note per correction):

* iteration-0 trials are warm-ups and are excluded (`n_warmup_excluded` counts them per point);
* M1 runtimes include a `time.sleep(2)` inside the timed window: 2 s are subtracted
  (`runtime_s_mean_as_recorded` keeps the recorded value);
* input sweeps are stored as nominal bins 8..2048; for Llama-2 the actual prompt lengths are known and
  used, for the others only prompt C's length is known (the output sweep's fixed input) and the other
  prompts keep their bin (`input_tokens_nominal` always keeps the bin);
* energy covers different parts of each machine (`energy_scope` says which, in words);
* the published bilinear fits are refitted (OLS, no intercept) from the independence grids.

Re-running the import on the same raw files gives byte-identical output. The raw files are read in
`wilkins2024_raw.py`, the fits refitted in `wilkins2024_refit.py`, and each machine's energy scope and idle
power described in `wilkins2024_systems.py`; this module aggregates the trials into points and writes the
profiles.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybridsim.core.atomic import import_directory
from hybridsim.core.profile_io import save_profile_dir
from hybridsim.core.profile_model import BilinearFit, Profile, ProfileMetadata

from .registry import BUILTIN_DIR
from .wilkins2024_raw import SWEEP_FILES, UPSTREAM, read_raw_csv, read_startup_rows, read_sweep_trials
from .wilkins2024_refit import refit_paper_coefficients
from .wilkins2024_systems import SYSTEMS, energy_scope, idle_power

M1_SLEEP_S = 2.0
PROMPTS = "ABCDEFGHI"
BINS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
LLAMA_ACTUAL_INPUT = dict(zip(BINS, (9, 21, 38, 78, 154, 267, 541, 986, 2117), strict=True))
"""Actual token counts (incl. BOS) of prompts A-I under the Llama-2 tokenizer, keyed by their bin."""
MODELS = {"Llama-2 (7B)": "llama2-7b", "Mistral (7B)": "mistral-7b", "Falcon (7B)": "falcon-7b"}
DOCUMENTED_OOM = {("Palmetto Intel+V100", "Falcon (7B)"): (("input", 2048, 32), ("output", 32, 2048))}
"""Settings the paper could not run (out of GPU memory), kept as `status = oom` rows."""


def import_wilkins2024(raw_dir: Path, out_dir: Path, overwrite: bool = False) -> list[str]:
    """Write every built-in profile derived from `raw_dir` under `out_dir` (any but the built-in folder
    by the rules of `import_directory`); return their names."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    raw = {sweep: read_raw_csv(raw_dir / filename) for sweep, (filename, _) in SWEEP_FILES.items()}
    trials = read_sweep_trials(raw)
    startup = read_startup_rows(raw)
    fits = refit_paper_coefficients(raw_dir)
    profiles = [
        build_profile(system, model, rows, startup, fits.get((system, model)))
        for (system, model), rows in trials.groupby(["system", "model"], sort=True)
    ]
    with import_directory(out_dir, BUILTIN_DIR, "profiles-wilkins2024", overwrite=overwrite) as place:
        for profile in profiles:
            save_profile_dir(profile, place / profile.name)
    return [profile.name for profile in profiles]


def _input_tokens(model: str, trials: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(input_tokens the cost model is keyed on, nominal bin) for each trial."""
    is_input = trials["sweep"] == "input"
    prompt_c = int(trials.loc[~is_input, "input_tokens_raw"].iloc[0])
    nominal = trials["input_tokens_raw"].where(is_input, BINS[PROMPTS.index("C")])
    if model == "Llama-2 (7B)":
        actual = nominal.map(LLAMA_ACTUAL_INPUT)
    else:
        actual = nominal.where(trials["prompt_id"] != "C", prompt_c)
    return actual.astype("int64"), nominal.astype("int64")


def aggregate_points(system: str, model: str, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep, input, output) over warm trials, with the corrections of the module docstring."""
    trials = trials.copy()
    trials["input_tokens"], trials["input_tokens_nominal"] = _input_tokens(model, trials)
    keys = ["sweep", "input_tokens", "output_tokens"]
    warm = trials[trials["iteration"] != 0]
    grouped = warm.groupby(keys, sort=True)
    points = grouped.agg(
        input_tokens_nominal=("input_tokens_nominal", "first"),
        prompt_id=("prompt_id", "first"),
        n_trials=("runtime_s", "size"),
        runtime_s_mean=("runtime_s", "mean"),
        runtime_s_std=("runtime_s", "std"),
        cpu_energy_j_mean=("cpu_energy_j", "mean"),
        cpu_energy_j_std=("cpu_energy_j", "std"),
        gpu_energy_j_mean=("gpu_energy_j", "mean"),
        gpu_energy_j_std=("gpu_energy_j", "std"),
        energy_j_mean=("energy_j", "mean"),
        energy_j_std=("energy_j", "std"),
        energy_per_token_j_mean=("energy_per_token_j", "mean"),
        total_tokens_mean=("total_tokens", "mean"),
    ).reset_index()
    warmups = trials[trials["iteration"] == 0].groupby(keys).size().rename("n_warmup_excluded")
    points = points.join(warmups, on=keys)
    points["n_warmup_excluded"] = points["n_warmup_excluded"].fillna(0).astype("int64")
    points["runtime_s_mean_as_recorded"] = points["runtime_s_mean"]
    if system == "M1-Pro":
        points["runtime_s_mean"] = points["runtime_s_mean"] - M1_SLEEP_S
    points["status"] = "ok"
    oom = [
        {
            "sweep": s,
            "input_tokens": m,
            "input_tokens_nominal": m,
            "output_tokens": n,
            "n_trials": 0,
            "n_warmup_excluded": 0,
            "status": "oom",
        }
        for s, m, n in DOCUMENTED_OOM.get((system, model), ())
    ]
    if oom:
        points = pd.concat([points, pd.DataFrame(oom)], ignore_index=True)
    return points


def build_profile(
    system: str, model: str, trials: pd.DataFrame, startup: pd.DataFrame, fit: BilinearFit | None
) -> Profile:
    """The profile of one (system, model): aggregated points plus metadata that says what they mean."""
    spec = SYSTEMS[system]
    points = aggregate_points(system, model, trials)
    cpu_w = {
        sweep: float((rows["cpu_energy_j"] / rows["runtime_s"]).median())
        for sweep, rows in trials.groupby("sweep")
    }
    idle_w, idle_source = idle_power(system, startup, cpu_w)
    notes = [
        f"Iteration-0 (warm-up) trials excluded: {int(points['n_warmup_excluded'].sum())} of "
        f"{len(trials)} trials; n_warmup_excluded counts them per point.",
        "Per single request: the recorded batch size 32 never took effect (one prompt per pipe() call).",
        "No KV cache (use_cache=False): cost grows about quadratically with output length.",
        "output_tokens is the requested limit (max_new_tokens); 90-100% of it was generated.",
        _input_note(model, points),
    ]
    if system == "M1-Pro":
        notes.append(
            "runtime_s_mean = recorded runtime - 2 s (a time.sleep(2) inside the timed window); "
            "runtime_s_mean_as_recorded keeps the recorded value. Energy is not corrected: "
            "powermetrics sampled only about (runtime - 1.6 s)."
        )
        notes.append(
            "Input-sweep total_tokens count the nominal bin, not the actual prompt length, so "
            "energy_per_token_j_mean is biased there (reference README §4)."
        )
    if "oom" in set(points["status"]):
        notes.append("Settings with status 'oom' ran out of GPU memory upstream and have no measurements.")
    if fit is not None:
        notes.append(
            f"paper_fit is refitted from the independence grid; its scope is '{fit.energy_scope}', "
            "which differs from this profile's energy_scope. It fits badly at small token counts "
            "and can go negative (reference README §5)."
        )
    metadata = ProfileMetadata(
        system=system,
        device=spec.device,
        model=model,
        dtype=spec.dtype,
        meter=spec.meter,
        energy_scope=energy_scope(system, model, cpu_w),
        provenance=f"{UPSTREAM}: raw/all-input-stats.csv "
        "and raw/all-output-stats.csv (input sweep at 32 output tokens, output sweep at prompt C)",
        date="2024-06-10",
        idle_power_w=idle_w,
        idle_power_source=idle_source,
        kv_cache=False,
        batch_size=1,
        notes=tuple(notes),
        extra={
            "paper": "Wilkins, Keshav & Mortier, e-Energy '24",
            "importer": "hybridsim.simulator.profiles.wilkins2024",
            "date_meaning": "date of the upstream commit that added the data (measured spring 2024)",
        },
    )
    return Profile(f"{spec.key}/{MODELS[model]}", metadata, points, paper_fit=fit)


def _input_note(model: str, points: pd.DataFrame) -> str:
    if model == "Llama-2 (7B)":
        return (
            "input_tokens are the actual Llama-2 prompt lengths incl. BOS (9, 21, 38, ..., 2117); "
            "input_tokens_nominal keeps the bin (8..2048) the source stored."
        )
    prompt_c = int(points.loc[points["sweep"] == "output", "input_tokens"].iloc[0])
    return (
        f"input_tokens are the nominal bins (8..2048) for prompts A-I: their actual lengths under this "
        f"model's tokenizer were not recorded, except prompt C ({prompt_c} tokens, from the output sweep), "
        "which is used. input_tokens_nominal keeps the bin."
    )
