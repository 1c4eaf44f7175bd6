"""Built-in serving profiles from the batched-serving measurements of Splitwise (Patel et al., ISCA 2024).

Splitwise timed Llama-2-70B and BLOOM-176B served by a vLLM-like engine on DGX-A100 and DGX-H100 machines
(the H100 also under a power cap), sharded over 2, 4 or 8 GPUs, at batch sizes 1-64: how long the prefill
pass of a batch took, and how long one decode iteration took. It published the times, not the energy:
its power columns are empty for most rows, and the only power figures are per-phase constants that its
simulator carries and does not use. This module turns the runs into one serving-only profile per (machine,
model, GPUs per replica), with every derivation visible:

* **prefill table**: batch size x the batch's prompt tokens (batch x prompt length); time = the median
  over runs (what splitwise-sim prices with), in seconds. Runs at batch 1 and prompt 512 differ only in
  how many tokens they generated afterwards, so their prefill times are pooled.
* **decode table**: batch size x the batch's context tokens, taken as batch x (prompt + generated / 2):
  `token_time` is the mean iteration time over a run that grew each request's context from the prompt
  to prompt + generated tokens, so the mean context of its iterations is half-way.
* **energy, modelled**: time x GPUs per replica x splitwise-sim's per-GPU power for the phase
  (`power_model/constant.yaml`); the power-capped H100 draws at most the cap (below). GPU energy only.
  The profile's `energy_source`, `estimated` flag, scope and notes all say this is an assumption.
* **KV-cache capacity**: (GPUs x device memory x (1 - headroom) - weights) / KV bytes per token, written
  out in `kv_capacity_derivation`.
* **implausible runs dropped**: a cell that took less time than a cell with less work (more than the
  loaders' tolerance) is left out and listed in PROVENANCE.md (Llama-2-70B on 2 GPUs at batch 64).

Re-running the import on the same raw files gives byte-identical output.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hybridsim.core.atomic import import_directory, write_text_atomic
from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import save_profile_dir
from hybridsim.core.profile_model import POINT_COLUMNS, Profile, ProfileMetadata, ServingTables
from hybridsim.core.readers import read_csv_file
from hybridsim.core.serving_checks import MONOTONE_TOLERANCE

from .registry import BUILTIN_DIR
from .splitwise2024_notes import provenance_markdown

UPSTREAM = "github.com/Mutinifni/splitwise-sim @ 8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0"
UPSTREAM_DATE = "2024-04-25"
PERF_FILE = "perf_model.csv"
POWER_FILE = "configs/power_model/constant.yaml"
GIB = 2**30
DEVICE_MEMORY_BYTES = 80 * GIB
"""Each of A100-80GB and H100-80GB (the reference README: 80 GiB each)."""
HEADROOM_FRACTION = 0.10
"""Device memory kept free of weights and KV cache for activations and the engine itself (vLLM's default
`gpu_memory_utilization` 0.9)."""
KV_HEAD_FRACTION = {"llama2-70b": 8 / 64, "bloom-176b": 1.0}
"""KV heads / attention heads. Llama-2-70B uses grouped-query attention, 8 KV heads for 64 query heads
(Touvron et al. 2023, Llama 2, §2.2 and Table 1); splitwise-sim's config lists no KV heads (and 32 query
heads), so its plain reading, 2 x layers x hidden x bytes, would be 8x too large. BLOOM-176B uses
ordinary multi-head attention."""
PCAP_FRACTION = 7140 / 10200
"""The power-capped H100's cap as a fraction of its 700 W TDP: the ratio of the dgx-h100-pcap and dgx-h100
server TDPs in `hardware_repo/skus` (an assumption: splitwise-sim gives no per-GPU cap)."""


@dataclass(frozen=True)
class Hardware:
    key: str
    """Directory name of the built-in system, e.g. 'splitwise-a100'."""
    system: str
    device: str
    power_key: str
    """The GPU's entry in power_model/constant.yaml."""
    cap_fraction: float | None = None


HARDWARE = {
    "a100-80gb": Hardware("splitwise-a100", "Splitwise DGX-A100", "NVIDIA A100-80GB (SXM)", "a100-80gb"),
    "h100-80gb": Hardware("splitwise-h100", "Splitwise DGX-H100", "NVIDIA H100-80GB (SXM)", "h100-80gb"),
    "h100-80gb-pcap": Hardware(
        "splitwise-h100-pcap",
        "Splitwise DGX-H100, power-capped",
        "NVIDIA H100-80GB (SXM), power-capped",
        "h100-80gb",
        PCAP_FRACTION,
    ),
}
MODELS = {"llama2-70b": "Llama-2 (70B)", "bloom-176b": "BLOOM (176B)"}
PHASES = {"prefill": "prompt_power", "decode": "token_power"}


def import_splitwise2024(raw_dir: Path, out_dir: Path, overwrite: bool = False) -> list[str]:
    """Write every built-in serving profile derived from `raw_dir` under `out_dir` (any but the built-in
    folder by the rules of `import_directory`); return their names."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    perf = read_csv_file(raw_dir / PERF_FILE, "raw file of the Splitwise measurements")
    power = _read_yaml(raw_dir / POWER_FILE)
    profiles: list[Profile] = []
    by_system: dict[str, list[dict[str, Any]]] = {}
    for (model, hardware, tp), runs in perf.groupby(["model", "hardware", "tensor_parallel"], sort=True):
        if hardware not in HARDWARE or model not in MODELS:
            raise HybridsimError(f"{raw_dir / PERF_FILE}: unknown model/hardware {model}/{hardware}")
        profile, dropped = build_profile(str(model), HARDWARE[str(hardware)], int(tp), runs, power, raw_dir)
        profiles.append(profile)
        by_system.setdefault(HARDWARE[str(hardware)].key, []).append(
            {"profile": profile, "dropped": dropped, "runs": len(runs)}
        )
    digests = {name: _sha256(raw_dir / name) for name in (PERF_FILE, POWER_FILE, *_model_files(raw_dir))}
    notes = {
        system: provenance_markdown(system, entries, digests, _power_table(power))
        for system, entries in sorted(by_system.items())
    }
    with import_directory(out_dir, BUILTIN_DIR, "profiles-splitwise2024", overwrite=overwrite) as place:
        for profile in profiles:
            save_profile_dir(profile, place / profile.name)
        for system, text in notes.items():
            write_text_atomic(place / system / "PROVENANCE.md", text)
    return [profile.name for profile in profiles]


def build_profile(
    model: str, hardware: Hardware, tp: int, runs: pd.DataFrame, power: dict[str, Any], raw_dir: Path
) -> tuple[Profile, list[str]]:
    """The serving-only profile of one (model, hardware, GPUs per replica) and the cells it left out."""
    watts = phase_power(hardware, power)
    prefill = _prefill_table(runs, tp * watts["prefill"])
    decode = _decode_table(runs, tp * watts["decode"])
    prefill, dropped, suspect = drop_implausible(prefill, "prompt_tokens", "prefill")
    # The decode iterations of runs whose prefill was implausible come from the same suspect runs.
    same_runs = [key in suspect for key in zip(decode["batch_size"], decode["prompt_size"], strict=True)]
    for row in decode[same_runs].itertuples(index=False):
        dropped.append(
            f"left out with its runs' prefill: decode at batch {row.batch_size}, {row.context_tokens} tokens "
            f"({row.time_s_mean:.4g} s)"
        )
    decode = decode[~np.asarray(same_runs, dtype=bool)].reset_index(drop=True)
    decode, dropped_decode, _ = drop_implausible(decode, "context_tokens", "decode")
    derivation = kv_derivation(model, tp, raw_dir)
    idle_w = tp * watts["idle"]
    energy_source = (
        f"MODELLED, not metered: measured time x {tp} GPUs x splitwise-sim's published per-GPU power "
        f"({watts['prefill']:g} W prefill, {watts['decode']:g} W decode; power_model/constant.yaml"
        f"{', capped' if hardware.cap_fraction else ''}): an assumption"
    )
    tables = ServingTables(
        prefill=prefill,
        decode=decode,
        kv_capacity_tokens=int(derivation["kv_capacity_tokens"]),
        kv_capacity_source=(
            f"derived: ({tp} GPUs x 80 GiB x (1 - {HEADROOM_FRACTION:g} headroom) - "
            f"{derivation['weights_bytes'] / 1e9:g} GB weights) / {derivation['kv_bytes_per_token']:,.0f} "
            "KV bytes per token (fp16; layers and hidden size from splitwise-sim's model_repo)"
        ),
        tensor_parallel=tp,
        energy_source=energy_source,
        idle_power_w=idle_w,
        idle_power_source=(
            f"published assumption: splitwise-sim idle power {watts['idle']:g} W per GPU x {tp}"
        ),
        kv_capacity_derivation={k: v for k, v in derivation.items() if k != "kv_capacity_tokens"},
    )
    metadata = ProfileMetadata(
        system=f"{hardware.system}, {tp} GPUs per replica",
        device=f"{tp}x {hardware.device}",
        model=MODELS[model],
        dtype="float16",
        meter="none: time measured, energy modelled from published power constants",
        energy_scope=(
            f"the {tp} GPUs of one model replica only (CPU, memory, fans, rest of the server not included); "
            "MODELLED as time x a constant per-phase power, not metered"
        ),
        provenance=f"derived from Splitwise (Patel et al., ISCA 2024) measurements, {UPSTREAM}",
        date=UPSTREAM_DATE,
        idle_power_w=idle_w,
        idle_power_source=tables.idle_power_source,
        kv_cache=True,
        batch_size=1,
        estimated=True,
        notes=(
            "energy is an ASSUMPTION: splitwise-sim's per-GPU phase power constants x measured time "
            "(its own simulator marks that power model unused)",
            "time_s_mean holds the median over runs (the statistic splitwise-sim prices with); "
            "time_s_mean_of_runs keeps the mean",
            "decode context_tokens = batch x (prompt + generated / 2), the "
            "mean context of a run's iterations",
            *dropped,
            *dropped_decode,
        ),
        extra={"upstream": UPSTREAM, "tensor_parallel": tp, "raw_runs": int(len(runs))},
    )
    name = f"{hardware.key}/{model}-tp{tp}"
    profile = Profile(
        name=name,
        metadata=metadata,
        points=pd.DataFrame(columns=list(POINT_COLUMNS)),
        serving=tables,
    )
    return profile, [*dropped, *dropped_decode]


def phase_power(hardware: Hardware, power: dict[str, Any]) -> dict[str, float]:
    """Per-GPU watts by phase ('idle', 'prefill', 'decode'), capped where the hardware is power-capped."""
    key = hardware.power_key
    watts = {
        "idle": float(power["idle_power"][key]),
        **{phase: float(power[column][key]) for phase, column in PHASES.items()},
    }
    if hardware.cap_fraction is not None:
        cap = round(hardware.cap_fraction * max(watts.values()), 6)
        watts = {phase: min(value, cap) for phase, value in watts.items()}
    return watts


def _cells(runs: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Median, mean, std and count of `column` (ms) per cell, in seconds."""
    seconds = runs.assign(time_s=runs[column] / 1000.0)
    return (
        seconds.groupby(keys, sort=True)["time_s"]
        .agg(time_s_mean="median", time_s_mean_of_runs="mean", time_s_std="std", n_trials="size")
        .reset_index()
    )


def _priced(cells: pd.DataFrame, watts: float) -> pd.DataFrame:
    """Add the modelled energies: `watts` for the whole replica x time."""
    cells["cpu_energy_j_mean"] = 0.0
    cells["gpu_energy_j_mean"] = cells["time_s_mean"] * watts
    cells["energy_j_mean"] = cells["gpu_energy_j_mean"]
    cells["energy_j_std"] = cells["time_s_std"] * watts
    cells["status"] = "ok"
    return cells


def _prefill_table(runs: pd.DataFrame, watts: float) -> pd.DataFrame:
    cells = _cells(runs, ["batch_size", "prompt_size"], "prompt_time")
    cells["prompt_tokens"] = cells["batch_size"] * cells["prompt_size"]
    return _priced(cells, watts)


def _decode_table(runs: pd.DataFrame, watts: float) -> pd.DataFrame:
    cells = _cells(runs, ["batch_size", "prompt_size", "token_size"], "token_time")
    cells["context_tokens"] = cells["batch_size"] * (cells["prompt_size"] + cells["token_size"] // 2)
    if cells.duplicated(["batch_size", "context_tokens"]).any():
        raise HybridsimError("splitwise import: two decode cells share a (batch, context) key")
    return _priced(cells, watts)


def drop_implausible(
    table: pd.DataFrame, tokens: str, which: str
) -> tuple[pd.DataFrame, list[str], set[tuple[int, int]]]:
    """Leave out cells that took less time than a cell with less work (same per-request length, fewer
    requests) by more than the loaders' tolerance; return the table, a note per cell left out and the
    (batch size, prompt length) of the runs left out."""
    notes: list[str] = []
    cells: set[tuple[int, int]] = set()
    keep = np.ones(len(table), dtype=bool)
    per_request = table[tokens] / table["batch_size"]
    for _, group in table.groupby(per_request, sort=True):
        group = group.sort_values("batch_size")
        times = group["time_s_mean"].to_numpy()
        peak = np.maximum.accumulate(times)
        for position in np.flatnonzero(times < MONOTONE_TOLERANCE * peak):
            row = group.iloc[position]
            before = group.iloc[int(np.argmax(times[:position]))]
            keep[table.index.get_loc(group.index[position])] = False
            cells.add((int(row["batch_size"]), int(row["prompt_size"])))
            notes.append(
                f"left out as implausible: {which} at batch {row['batch_size']}, {row[tokens]} tokens took "
                f"{row['time_s_mean']:.4g} s, less than {before['time_s_mean']:.4g} s at batch "
                f"{before['batch_size']}, {before[tokens]} tokens (fewer requests of the same length)"
            )
    return table[keep].reset_index(drop=True), notes, cells


def kv_derivation(model: str, tp: int, raw_dir: Path) -> dict[str, float]:
    """The KV-cache capacity of one replica and the numbers it follows from."""
    architecture = _read_yaml(raw_dir / "configs/model_repo/architectures" / f"{model}.yaml")
    size = _read_yaml(raw_dir / "configs/model_repo/sizes" / f"{model}-fp16.yaml")
    dtype_bytes = int(size["dtype_size"])
    kv_bytes = (
        2 * int(architecture["num_layers"]) * int(architecture["hidden_size"]) * dtype_bytes
    ) * KV_HEAD_FRACTION[model]
    memory = tp * DEVICE_MEMORY_BYTES
    weights = float(size["weights"])
    free = memory * (1 - HEADROOM_FRACTION) - weights
    if free < kv_bytes:
        raise HybridsimError(f"splitwise import: {model} on {tp} GPUs leaves no memory for a KV cache")
    return {
        "device_memory_bytes": float(memory),
        "weights_bytes": weights,
        "kv_bytes_per_token": float(kv_bytes),
        "kv_head_fraction": KV_HEAD_FRACTION[model],
        "headroom_fraction": HEADROOM_FRACTION,
        "kv_capacity_tokens": float(int(free // kv_bytes)),
    }


def _power_table(power: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    rows = []
    for hardware in HARDWARE.values():
        watts = phase_power(hardware, power)
        rows.append((hardware.key, watts["idle"], watts["prefill"], watts["decode"]))
    return rows


def _model_files(raw_dir: Path) -> list[str]:
    folder = raw_dir / "configs/model_repo"
    return sorted(path.relative_to(raw_dir).as_posix() for path in folder.glob("*/*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HybridsimError(f"{path}: raw file of the Splitwise configs not found")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise HybridsimError(f"{path}: expected a YAML mapping")
    return document


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
