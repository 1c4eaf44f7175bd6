"""Pictures of batching pools: the power a pool drew over the day, per policy.

`power_over_time.png`: one panel per batching pool, one line per run (policy, and sweep point if any):
the pool's power (W) in equal time bins, active energy of the passes that began in a bin plus the idle
power of its nodes for the time they were not in a pass. The shape shows a diurnal trace, a burst, or
the drain after the last arrival, which a day's total cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .figures import PNG_METADATA, plt


def power_over_time(summary: dict[str, Any], out_dir: Path) -> str | None:
    """Write `power_over_time.png` if any run has a batching pool; return its name (or None)."""
    pools = [
        name
        for name in summary["cluster"]
        if any("serving" in run["systems"].get(name, {}) for run in summary["runs"])
    ]
    if not pools:
        return None
    figure, axes = plt.subplots(len(pools), 1, figsize=(8, 3 * len(pools)), squeeze=False)
    for axis, name in zip(axes[:, 0], pools, strict=True):
        for run in summary["runs"]:
            serving = run["systems"].get(name, {}).get("serving")
            if serving is None:
                continue
            power = serving["power_w"]
            times = (np.arange(len(power["watts"])) + 0.5) * power["bin_s"]
            label = run["policy"] + (f" ({run['sweep_value']})" if run.get("sweep_value") is not None else "")
            axis.plot(times / 60.0, np.asarray(power["watts"]) / 1000.0, label=label)
        axis.set_title(f"{name} pool: power drawn over time (passes + idle)")
        axis.set_xlabel("simulated time (min)")
        axis.set_ylabel("power (kW)")
        parameter = (summary.get("sweep") or {}).get("parameter")
        axis.legend(
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title=f"policy ({parameter})" if parameter else None,
            title_fontsize="small",
        )
    figure.tight_layout()
    figure.savefig(out_dir / "power_over_time.png", dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(figure)
    return "power_over_time.png"
