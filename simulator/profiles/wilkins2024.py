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

Re-running the import on the same raw files gives byte-identical output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybridsim.core.atomic import import_directory
from hybridsim.core.bilinear import fit_bilinear
from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import save_profile_dir
from hybridsim.core.profile_model import BilinearFit, Profile, ProfileMetadata
from hybridsim.core.readers import read_csv_file

from .registry import BUILTIN_DIR

UPSTREAM = "github.com/grantwilkins/energy-inference @ 5c2cfa4a9bdbccc6a037ece3d2eb64322db115ea"
M1_SLEEP_S = 2.0
PROMPTS = "ABCDEFGHI"
BINS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
LLAMA_ACTUAL_INPUT = dict(zip(BINS, (9, 21, 38, 78, 154, 267, 541, 986, 2117), strict=True))
"""Actual token counts (incl. BOS) of prompts A-I under the Llama-2 tokenizer, keyed by their bin."""
MODELS = {"Llama-2 (7B)": "llama2-7b", "Mistral (7B)": "mistral-7b", "Falcon (7B)": "falcon-7b"}
GRID_MODELS = {
    "Llama-2 (7B)": "Llama-2-7b-chat-hf",
    "Mistral (7B)": "Mistral-7B-v0.1",
    "Falcon (7B)": "falcon-7b",
}
M1_GRID_BROKEN_PHASES = ("inference-B-1", "inference-B-1724", "inference-B-338", "inference-B-278")
PALMETTO_IDLE_W = {
    ("Palmetto Intel+A100", "input"): "37.5 W per package",
    ("Palmetto Intel+A100", "output"): "33.5 W per package",
    ("Palmetto Intel+V100", "input"): "37.78 W and 38.71 W for packages 0 and 1",
    ("Palmetto Intel+V100", "output", "Falcon (7B)"): "33.5 W per package",
    ("Palmetto Intel+V100", "output", "Llama-2 (7B)"): "37.5 W per package",
    ("Palmetto Intel+V100", "output", "Mistral (7B)"): "39.5 W per package",
}
"""The idle power the upstream scripts subtracted from RAPL package energy (reference README §3)."""


@dataclass(frozen=True)
class System:
    key: str
    device: str
    dtype: str
    meter: str


SYSTEMS = {
    "M1-Pro": System(
        "m1-pro",
        "Apple M1 Pro (10-core CPU, 14-core GPU, 32 GB unified memory), MacBook Pro",
        "float16 (MPS)",
        "powermetrics",
    ),
    "Swing AMD+A100": System(
        "swing-a100",
        "NVIDIA A100 40GB (1 GPU used), 2x AMD EPYC 7742 (Argonne Swing)",
        "bfloat16 (CUDA)",
        "nvml+uprof",
    ),
    "Palmetto Intel+A100": System(
        "palmetto-a100",
        "NVIDIA A100 40GB, 2x Intel Xeon 6148G (Clemson Palmetto)",
        "bfloat16 (CUDA)",
        "nvml+rapl",
    ),
    "Palmetto Intel+V100": System(
        "palmetto-v100",
        "NVIDIA V100 16GB, 2x Intel Xeon 6148G (Clemson Palmetto)",
        "bfloat16 (CUDA)",
        "nvml+rapl",
    ),
}
DOCUMENTED_OOM = {("Palmetto Intel+V100", "Falcon (7B)"): (("input", 2048, 32), ("output", 32, 2048))}
"""Settings the paper could not run (out of GPU memory), kept as `status = oom` rows."""
SWEEP_FILES = {
    "input": ("all-input-stats.csv", "Output Token Limit"),
    "output": ("all-output-stats.csv", "Number of Output Tokens"),
}
"""Per sweep: the raw file and the column that holds the output length."""


def import_wilkins2024(raw_dir: Path, out_dir: Path, overwrite: bool = False) -> list[str]:
    """Write every built-in profile derived from `raw_dir` under `out_dir` (any but the built-in folder
    by the rules of `import_directory`); return their names."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    raw = {sweep: _read_csv(raw_dir / filename) for sweep, (filename, _) in SWEEP_FILES.items()}
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


def _read_csv(path: Path) -> pd.DataFrame:
    return read_csv_file(path, "raw file of the Wilkins et al. 2024 data")


def read_sweep_trials(files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every inference trial of both sweeps (`files`: each sweep's raw file),
    one row each, columns renamed.
    """
    frames = []
    for sweep, (_, limit_column) in SWEEP_FILES.items():
        raw = files[sweep]
        raw = raw[raw["Phase"].str.contains("inference")]
        frame = pd.DataFrame(
            {
                "sweep": sweep,
                "system": raw["System"],
                "model": raw["Model"],
                "prompt_id": raw["Phase"].str.split("-").str[-2],
                "input_tokens_raw": raw["Number of Input Tokens"],
                "output_tokens": raw[limit_column],
                "iteration": raw["Iteration"],
                "runtime_s": raw["Runtime (s)"],
                "cpu_energy_j": raw["CPU Energy (J)"],
                "gpu_energy_j": raw["GPU Energy (J)"],
                "total_tokens": raw["Total Number of Tokens"],
            }
        )
        frames.append(frame)
    trials = pd.concat(frames, ignore_index=True)
    trials["energy_j"] = trials["cpu_energy_j"] + trials["gpu_energy_j"]
    trials["energy_per_token_j"] = trials["energy_j"] / trials["total_tokens"]
    trials.loc[trials["sweep"] == "output", "prompt_id"] = "C"
    return trials


def read_startup_rows(files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Start-up phases (tokenizer load, model load): the only windows in which the GPUs did no inference."""
    raw = pd.concat([files[sweep] for sweep in SWEEP_FILES], ignore_index=True)
    raw = raw[~raw["Phase"].str.contains("inference")]
    return pd.DataFrame(
        {
            "system": raw["System"],
            "model": raw["Model"],
            "phase": raw["Phase"],
            "gpu_power_w": raw["GPU Energy (J)"] / raw["Runtime (s)"],
        }
    )


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


def refit_paper_coefficients(raw_dir: Path) -> dict[tuple[str, str], BilinearFit]:
    """OLS without intercept of E and R on [m, n, m*n] over the independence grids (reference README §5)."""
    fits = {}
    swing = _read_csv(raw_dir / "independence" / "all-stats-raw.csv")
    swing = swing[swing["Phase"].str.contains("inference")]
    for model, hf_id in GRID_MODELS.items():
        rows = swing[swing["Model"] == hf_id]
        fits[("Swing AMD+A100", model)] = _bilinear_fit(
            rows["Number of Input Tokens"],
            rows["Number of Output Tokens"],
            rows["GPU Energy (mJ)"] / 1e3,
            rows["Runtime (s)"],
            "GPU only (NVML), input tokens binned to powers of two",
            "raw/independence/all-stats-raw.csv (Swing 9x9 grid, one trial per cell)",
            clean=rows.index,
        )
    m1 = _read_csv(raw_dir / "independence" / "Llama-2-7b-chat-hf-M1-Pro.csv")
    m1 = m1[m1["Phase"].str.contains("inference")]
    clean = m1.index[~m1["Phase"].isin(M1_GRID_BROKEN_PHASES)]
    fits[("M1-Pro", "Llama-2 (7B)")] = _bilinear_fit(
        m1["Number of Input Tokens"].fillna(0),
        m1["Number of Output Tokens"],
        m1["CPU Energy (J)"] + m1["GPU Energy (J)"],
        m1["Runtime (s)"],
        "CPU process share + whole GPU (powermetrics), actual input tokens; runtime includes the 2 s sleep",
        "raw/independence/Llama-2-7b-chat-hf-M1-Pro.csv (M1 grid, 1-3 trials per cell; the fit keeps "
        "the 4 broken first-run rows, as upstream did)",
        clean=clean,
    )
    return fits


def _bilinear_fit(
    m: pd.Series,
    n: pd.Series,
    energy: pd.Series,
    runtime: pd.Series,
    scope: str,
    source: str,
    clean: pd.Index,
) -> BilinearFit:
    def fit(y: pd.Series) -> tuple[tuple[float, float, float], float]:
        result = fit_bilinear(m.to_numpy(float), n.to_numpy(float), y.to_numpy(float))
        if result is None or result.r2 is None:
            raise HybridsimError(f"{source}: the grid does not determine the bilinear fit")
        a, b, c = (_round(value) for value in result.coefficients)
        return (a, b, c), _round(result.r2)  # uncentred R^2: the model has no intercept

    energy_coefficients, r2_energy = fit(energy)
    runtime_coefficients, r2_runtime = fit(runtime)
    return BilinearFit(
        energy_coefficients,
        runtime_coefficients,
        scope,
        f"{UPSTREAM}: {source}",
        r2_energy=r2_energy,
        r2_runtime=r2_runtime,
        input_range=(float(m[clean].min()), float(m[clean].max())),
        output_range=(float(n[clean].min()), float(n[clean].max())),
    )


def _round(value: float) -> float:
    """Nine significant digits: stable across BLAS builds, so regeneration stays byte-identical."""
    return float(f"{value:.9g}")


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
    idle_w, idle_source = _idle_power(system, startup, cpu_w)
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
        energy_scope=_energy_scope(system, model, cpu_w),
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


def _energy_scope(system: str, model: str, cpu_w: dict[str, float]) -> str:
    if system == "M1-Pro":
        return (
            "Whole-GPU energy (powermetrics GPU power x 200 ms samples) plus this process's share of CPU "
            "energy (CPU power x python energy impact / all tasks). Idle not subtracted; other "
            "processes, display, SSD and power supply not included."
        )
    if system == "Swing AMD+A100":
        return (
            "GPU energy of the one A100 used (NVML counter via pyJoules) plus a constant CPU power "
            f"(AMD uProf per-core average over the whole job: {cpu_w['input']:.2f} W in the input sweep, "
            f"{cpu_w['output']:.2f} W in the output sweep) x runtime, so the CPU is not really measured "
            "per request. Idle not subtracted; DRAM, other host parts and power supply not included."
        )
    idle = (
        PALMETTO_IDLE_W[(system, "input")],
        PALMETTO_IDLE_W.get((system, "output"), PALMETTO_IDLE_W.get((system, "output", model))),
    )
    return (
        "GPU energy (NVML counter via pyJoules) plus RAPL energy of CPU packages 0 and 1 minus an "
        f"assumed idle power x runtime per package ({idle[0]} in the input sweep, {idle[1]} in the "
        "output sweep), so CPU energy is above an assumed idle and can go negative. DRAM, other host "
        "parts and power supply not included."
    )


def _idle_power(system: str, startup: pd.DataFrame, cpu_w: dict[str, float]) -> tuple[float, str]:
    """Idle power within the profile's scope: not measured upstream, so estimated from start-up windows."""
    rows = startup[startup["system"] == system]
    if system == "M1-Pro":
        gpu = float(rows.loc[rows["phase"] == "load model", "gpu_power_w"].median())
        return _round_w(gpu), (
            f"Not measured by the paper. GPU: median powermetrics GPU power over the {len(rows)} 'load "
            f"model' windows ({gpu:.3f} W; the GPU does no inference there). CPU: the process's share of CPU "
            "power at idle is assumed 0 W. Whole-machine idle of an M1 Pro (a few W) is outside this scope."
        )
    tokenizer = rows[rows["phase"] == "tokenizer"]
    gpu = float(tokenizer["gpu_power_w"].median())
    gpu_text = (
        f"Not measured by the paper. GPU: median NVML power over the {len(tokenizer)} tokenizer-load "
        f"windows on this system ({gpu:.1f} W; 0.2-0.6 s windows before the model was loaded, "
        "in line with the ~25-60 W an idle datacenter A100 or V100 draws)."
    )
    if system == "Swing AMD+A100":
        cpu = float(np.mean(list(cpu_w.values())))
        return _round_w(gpu + cpu), gpu_text + (
            f" CPU: the constant uProf power this scope adds ({cpu:.2f} W, mean of the two sweeps' values)."
        )
    return _round_w(gpu), gpu_text + (
        " CPU: 0 W, because the scope subtracts an assumed idle power from RAPL by construction, so an idle "
        "host contributes nothing within it if that assumption holds."
    )


def _round_w(value: float) -> float:
    return float(f"{value:.3g}")
