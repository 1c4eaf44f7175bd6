"""What a reader of a simulation's summary must know about each pool's numbers.

A figure of joules is only as good as what stands behind it: which machine and model were measured, by
which meter and over what scope, whether the numbers are an estimate, and which idle power (measured,
stated or set in the scenario) was charged. Each pool's entry in `summary.json` carries these facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..profiles.registry import load_profile
from .simulation_schema import PoolSpec

PASSES_OUT_OF_RANGE = {
    "clamp": "clamped to the measured batch sizes and token counts",
    "error": "clamped to the measured batch sizes and token counts",
    "extrapolate": "priced by the serving curves continued past the measured batch sizes and token counts",
}
"""How a batching pool prices passes outside its tables, by the scenario's `cost_model.out_of_range`
(`error` refuses requests of request-level pools; a batching pool's passes are clamped)."""


def profile_facts(spec: PoolSpec, base_dir: Path | None, out_of_range: str = "clamp") -> dict[str, Any]:
    """What a reader of the summary must know about a pool's numbers: what was measured, how, and the idle."""
    profile = load_profile(spec.profile, base_dir)
    meta = profile.metadata
    overridden = spec.idle_power_w is not None
    serving = {}
    if spec.serving == "continuous" and profile.serving is not None:
        serving = {
            "serving_energy_source": profile.serving.energy_source,
            "serving_energy_modelled": profile.serving.energy_modelled,
            "kv_capacity_source": profile.serving.kv_capacity_source,
            "serving_passes_out_of_range": PASSES_OUT_OF_RANGE[out_of_range],
        }
        if not overridden:
            meta_idle = profile.serving.idle_power_w
            if meta_idle is not None:
                serving["idle_power_w_used"] = meta_idle
                serving["idle_power_source"] = profile.serving.idle_power_source
    return {
        "system": meta.system,
        "model": meta.model,
        "meter": meta.meter,
        "estimated": meta.estimated,
        "energy_scope": meta.energy_scope,
        "kv_cache": meta.kv_cache,
        "batch_size": meta.batch_size,
        "idle_power_w_used": spec.idle_power_w if overridden else meta.idle_power_w,
        "idle_power_source": "set in the scenario" if overridden else meta.idle_power_source,
        **serving,
    }
