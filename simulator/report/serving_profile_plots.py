"""Why batching matters, per system: a decode iteration's time and the energy of one token against batch size.

Three panels, one line per profile, systems side by side: the time of one decode iteration, the energy per
generated token of that iteration (its energy over the batch size: each running request gains one token),
and the energy per prompt token of a prefill pass. Each line is the profile's serving cost model at a fixed
length per request (the one most of its batch sizes were measured at), with the measured passes as dots.
Where energy is modelled rather than metered, the legend says so.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hybridsim.core.atomic import write_bytes_atomic
from hybridsim.core.profile_model import Profile
from hybridsim.core.serving_checks import ok_rows

from ..profiles.serving_costs import build_serving_cost_model


def _common_length(table: pd.DataFrame, tokens: str) -> int:
    """The per-request length measured at the most batch sizes (ties: the shortest)."""
    per_request = (table[tokens] // table["batch_size"]).astype(int)
    counts = table.assign(per_request=per_request).groupby("per_request")["batch_size"].nunique()
    return int(counts[counts == counts.max()].index.min())


def plot_serving(profiles: list[Profile], path: Path) -> None:
    """Write the three panels of the module docstring for `profiles` (each with serving tables) to `path`."""
    figure = Figure(figsize=(14, 4.8 + 0.2 * len(profiles)), layout="constrained")
    time_axis, decode_axis, prefill_axis = figure.subplots(1, 3)
    for profile in profiles:
        serving = profile.serving
        assert serving is not None
        model = build_serving_cost_model(profile, out_of_range="clamp")
        modelled = " [energy MODELLED]" if serving.energy_modelled else ""
        decode, prefill = ok_rows(serving.decode), ok_rows(serving.prefill)
        context = _common_length(decode, "context_tokens")
        prompt = _common_length(prefill, "prompt_tokens")
        low, high = model.batch_range
        batches = np.unique(np.geomspace(low, high, 64).round())
        iteration = model.decode(batches, batches * context)
        passes = model.prefill(batches, batches * prompt)
        label = (
            f"{profile.name}, tp{serving.tensor_parallel}{modelled} (decode: {context} context tokens per "
            f"request; prefill: {prompt} prompt tokens per request)"
        )
        line = time_axis.plot(batches, 1000 * iteration.time_s, label=label)
        color = line[0].get_color()
        decode_axis.plot(batches, iteration.energy_j / batches, color=color)
        prefill_axis.plot(batches, passes.energy_j / (batches * prompt), color=color)
        at = decode[decode["context_tokens"] == decode["batch_size"] * context]
        time_axis.plot(at["batch_size"], 1000 * at["time_s_mean"], "o", color=color, markersize=3)
        decode_axis.plot(
            at["batch_size"], at["energy_j_mean"] / at["batch_size"], "o", color=color, markersize=3
        )
        at = prefill[prefill["prompt_tokens"] == prefill["batch_size"] * prompt]
        prefill_axis.plot(
            at["batch_size"], at["energy_j_mean"] / at["prompt_tokens"], "o", color=color, markersize=3
        )
    for axis, title in (
        (time_axis, "decode iteration time (ms)"),
        (decode_axis, "energy per generated token (J)"),
        (prefill_axis, "prefill energy per prompt token (J)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size (requests)")
        axis.set_ylabel(title)
        axis.grid(True, which="both", alpha=0.3)
    # Below the panels: inside one, the legend covered the lines that end in its corner.
    handles, labels = time_axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=8, frameon=False)
    figure.suptitle("Cost of one pass as batches grow (lines: serving cost model; dots: measured passes)")
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
