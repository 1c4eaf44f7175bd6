"""How `hybridsim profiles show` prints a profile's serving tables: what one pass costs, per table row."""

from __future__ import annotations

import pandas as pd

from hybridsim.core.profile_model import DECODE_KEYS, PREFILL_KEYS, ServingTables


def describe_serving(serving: ServingTables) -> str:
    """The serving block and both tables, with time in ms and energy per token beside energy per pass.

    Energy per token divides a pass's energy by the tokens it served: the prompt tokens of a prefill pass,
    the one token each running request gains in a decode iteration (the batch size).
    """
    modelled = serving.energy_modelled and "modelled" not in serving.energy_source.lower()
    label = "  [MODELLED, not metered]" if modelled else ""
    idle = (
        "unknown"
        if serving.idle_power_w is None
        else f"{serving.idle_power_w:g} W ({serving.idle_power_source})"
    )
    lines = [
        f"serving:      {serving.tensor_parallel} GPU(s) per replica; KV cache "
        f"{serving.kv_capacity_tokens:,} "
        f"tokens ({serving.kv_capacity_source})",
        f"pass energy:  {serving.energy_source}{label}",
        f"pass idle:    {idle}",
    ]
    for title, table, keys, per_token in (
        ("prefill passes", serving.prefill, PREFILL_KEYS, "prompt_tokens"),
        ("decode iterations", serving.decode, DECODE_KEYS, "batch_size"),
    ):
        shown = pd.DataFrame(
            {
                "batch": table[keys[0]],
                keys[1].replace("_tokens", ""): table[keys[1]],
                "n": table["n_trials"],
                "time_ms": 1000 * table["time_s_mean"],
                "energy_j": table["energy_j_mean"],
                "j_per_token": table["energy_j_mean"] / table[per_token],
                "cpu_j": table["cpu_energy_j_mean"],
                "gpu_j": table["gpu_energy_j_mean"],
            }
        )
        if "status" in table.columns:
            shown["status"] = table["status"].fillna("ok")
        lines.append(f"{title}:")
        lines.append(shown.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    return "\n".join(lines) + "\n"
