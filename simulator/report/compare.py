"""`hybridsim compare DIR1 DIR2 ...`: finished simulation runs side by side.

An operator who ran the same datacenter twice (another seed, more M1 nodes, a power cap) wants one table:
for every run, policy and sweep point, the energy bill, the latency users saw, and how busy each system
was. `compare_runs` reads each run's `summary.json` (nothing is re-simulated), prints that table (the
columns an operator compares first, narrower than 120 characters), and with an output folder also writes
every column as `compare.csv` and draws `compare.png` (energy against p99 latency: one marker shape per
run, one colour per policy, and a legend that lists each once).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from hybridsim.core.atomic import staged_directory, write_bytes_atomic, write_text_atomic
from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import check_output_path
from hybridsim.core.profile_checks import is_finite_number
from hybridsim.core.readers import read_json_file

TERMINAL_WIDTH = 119
"""The printed table's widest line (characters); the full table is compare.csv."""
SHOWN = {
    "run": "run",
    "policy": "policy",
    "sweep": "sweep",
    "energy_kwh": "kWh",
    "idle_pct": "idle%",
    "j_per_request": "J/req",
    "latency_p50_s": "p50_s",
    "latency_p99_s": "p99_s",
    "throughput_rps": "req/s",
    "slo_attainment": "SLO",  # share meeting slo_s; else the lowest share meeting one of the slo: targets
    "cost_u": "U",
}
"""Printed columns (CSV name -> header), besides each system's utilisation
(`util_<system>` -> `<system>%`).
"""


def _read_summary(run_dir: Path) -> dict[str, Any]:
    summary = read_json_file(
        Path(run_dir) / "summary.json", f"{run_dir}: no summary.json (not a finished run directory)"
    )
    if not isinstance(summary, dict):
        raise HybridsimError(f"{Path(run_dir) / 'summary.json'}: malformed: not a JSON object")
    if summary.get("kind") != "simulation":
        raise HybridsimError(
            f"{run_dir}: a {summary.get('kind', 'unknown')!r} run; compare reads simulation runs"
        )
    return summary


NUMBERS = ("requests", "energy_kwh", "idle_pct", "j_per_request", "latency_p50_s", "latency_p99_s")
"""Columns every row must hold as finite numbers (a damaged summary.json is refused, not plotted)."""


def comparison_table(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per (run, sweep point, policy)."""
    rows = []
    names = [_text(Path(run_dir).name or str(run_dir)) for run_dir in run_dirs]
    if len(set(names)) < len(names):
        names = [_text(str(run_dir)) for run_dir in run_dirs]
    for name, run_dir in zip(names, run_dirs, strict=True):
        summary = _read_summary(Path(run_dir))
        try:
            rows.extend(_rows(name, summary))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            what = f"missing {error}" if isinstance(error, KeyError) else str(error).splitlines()[0]
            raise HybridsimError(f"{Path(run_dir) / 'summary.json'}: malformed: {what}") from None
    return pd.DataFrame(rows)


def _text(name: str) -> str:
    """A folder name as a table can hold it: bytes that are not UTF-8 (`\\xff`) shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _rows(name: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    parameter = (summary.get("sweep") or {}).get("parameter")
    if not isinstance(summary["runs"], list) or not summary["runs"]:
        raise ValueError("runs: no run recorded")
    for run in summary["runs"]:
        energy = run["energy"]
        row: dict[str, Any] = {
            "run": name,
            "policy": str(run["policy"]),
            "sweep": f"{parameter}={run['sweep_value']}" if parameter else "",
            "requests": run["requests"],
            "energy_kwh": energy["total_kwh"],
            "idle_pct": 100.0 * energy["idle_j"] / energy["total_j"] if energy["total_j"] else 0.0,
            "j_per_request": run["energy_per_request_j"],
            "latency_p50_s": run["latency_s"]["p50"],
            "latency_p99_s": run["latency_s"]["p99"],
            "wait_p99_s": run["wait_s"]["p99"],
            "throughput_rps": run["throughput_rps"],
        }
        for system, values in run["systems"].items():
            row[f"util_{system}"] = values["utilisation"]
        row["slo_attainment"] = run["slo"]["attainment"] if run.get("slo") else None
        slos = run.get("slos")
        if slos:  # the scenario's `slo:` targets (TTFT, TBT, latency): the worst one's attainment is shown
            for target, share in slos["attainment"].items():
                row[f"slo_attainment_{target}"] = share
            row["slos_all_met"] = slos["all_met"]
            if row["slo_attainment"] is None:
                row["slo_attainment"] = min(slos["attainment"].values())
        row["cost_u"] = run["cost_u"]["value"]
        for column in NUMBERS:
            value = row[column]
            if not is_finite_number(value):
                raise ValueError(
                    f"runs: {column} of policy {row['policy']!r}: {value!r} is not a finite number"
                )
        for system in run["systems"]:  # shown as percentages: 'gpu' x 100.0 was a TypeError
            value = row[f"util_{system}"]
            if not is_finite_number(value):
                raise ValueError(f"runs: systems.{system}.utilisation: {value!r} is not a finite number")
        rows.append(row)
    return rows


def energy_axis(table: pd.DataFrame) -> tuple[str, str]:
    """(column, label) of the plot's energy axis: total kWh where every run served as many requests, else
    energy per request (a run of 40,000 requests would otherwise look four times dearer than one of 10,000).
    """
    if table["requests"].nunique() <= 1:
        return "energy_kwh", "total energy, active + idle (kWh)"
    return "j_per_request", "energy per request, active + idle (J; the runs' request counts differ)"


def _plot(table: pd.DataFrame, path: Path) -> None:
    from matplotlib.lines import Line2D

    from .figures import PNG_METADATA, plt
    from .simulation_plots import MARKERS

    policies = list(dict.fromkeys(table["policy"]))
    palette = plt.get_cmap("tab10" if len(policies) <= 10 else "tab20")
    colour = {
        policy: palette(k % palette.N) for k, policy in enumerate(policies)
    }  # a policy's colour in every run
    energy, energy_label = energy_axis(table)
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    for k, (run, rows) in enumerate(table.groupby("run", sort=False)):
        for policy, mine in rows.groupby("policy", sort=False):
            axis.plot(
                mine["latency_p99_s"],
                mine[energy],
                marker=MARKERS[k % len(MARKERS)],
                markersize=7,
                fillstyle="none",
                color=colour[policy],
                linewidth=1 if len(mine) > 1 else 0,
                label=f"{run}: {policy}",
            )
    axis.set_xscale("log")
    axis.set_xlabel("p99 latency, arrival to last token (s, log)")
    axis.set_ylabel(energy_label)
    axis.set_title("Runs compared: energy against tail latency (marker: run, colour: policy)")
    axis.grid(True, which="both", alpha=0.3)
    # One entry per run (its marker) and one per policy (its colour), not one per pair.
    runs = list(dict.fromkeys(table["run"]))
    handles = [
        Line2D(
            [], [], marker=MARKERS[k % len(MARKERS)], color="black", fillstyle="none", linewidth=0, label=run
        )
        for k, run in enumerate(runs)
    ] + [Line2D([], [], color=colour[policy], linewidth=3, label=policy) for policy in policies]
    axis.legend(
        handles=handles,
        fontsize=7,
        ncol=1 if len(handles) <= 24 else 2,
        loc="center left",
        bbox_to_anchor=(1.02, 0.5),
        frameon=False,
    )
    png = io.BytesIO()
    try:
        figure.savefig(png, format="png", dpi=120, bbox_inches="tight", metadata=PNG_METADATA)
    finally:
        plt.close(figure)
    write_bytes_atomic(path, png.getvalue())


def compare_runs(run_dirs: list[Path], out_dir: Path | None, overwrite: bool = False) -> str:
    """The comparison as a text table; with `out_dir`, also `compare.csv` and `compare.png` there.

    `out_dir` follows the rules of every output folder (`staged_directory`, kind `compare`)."""
    if not run_dirs:
        raise HybridsimError("compare: name at least one run directory")
    if out_dir is not None:
        check_output_path(Path(out_dir))  # a bad --out is refused before any run is read
    table = comparison_table([Path(run_dir) for run_dir in run_dirs])
    if out_dir is not None:
        with staged_directory(Path(out_dir), "compare", overwrite=overwrite) as staging:
            write_text_atomic(
                staging / "compare.csv", table.to_csv(index=False, float_format="%.6g", lineterminator="\n")
            )
            _plot(table, staging / "compare.png")
    return text_table(table)


def _shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by '~': names that share a prefix
    (`energy-under-slo-60`, `energy-under-slo-60-oracle`) differ at their ends, which stay visible."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "~" + text[len(text) - tail :]


def _shortened(values: pd.Series, width: int) -> pd.Series:
    """Names shortened to `width`, or to the least width past it at which no two distinct names read alike."""
    names = list(dict.fromkeys(str(value) for value in values))
    longest = max((len(name) for name in names), default=0)
    while width < longest and len({_shorten(name, width) for name in names}) < len(names):
        width += 1
    return values.map(lambda value: _shorten(str(value), width))


def text_table(table: pd.DataFrame) -> str:
    """The table for a terminal: the main columns, percentages for idle share and utilisation, at most
    TERMINAL_WIDTH characters wide where names allow (long run and policy names lose their middle to '~',
    never so far that two of them read alike)."""
    shown = table[[column for column in SHOWN if column in table]].rename(columns=SHOWN)
    if not shown["sweep"].astype(bool).any():
        shown = shown.drop(columns="sweep")
    for column in [name for name in table if name.startswith("util_")]:
        shown.insert(len(shown.columns) - 2, f"{column[5:]}%", 100.0 * table[column])
    for names in (30, 24, 20, 16, 12):
        text = shown.assign(
            run=_shortened(shown["run"], names), policy=_shortened(shown["policy"], names)
        ).to_string(index=False, float_format=lambda value: f"{value:.4g}", na_rep="-")
        if max(len(line) for line in text.splitlines()) <= TERMINAL_WIDTH:
            break
    return text + "\n(every column, full names: compare.csv, written with --out)"
