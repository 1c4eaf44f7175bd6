"""`hybridsim calibrate --serving`: measure what one prefill pass and one decode iteration cost here.

    # GPU: batch 1-64, prompts and contexts of 128-2048 tokens per request, idle power metered for 10 s
    hybridsim calibrate --serving --device cuda --arch llama2-7b --meter nvidia --out profiles/h100-serving
    # CPU smoke test with a tiny model and the estimated meter (energies are a model, and say so)
    hybridsim calibrate --serving --quick --arch tiny-llama --meter estimated --out /tmp/serving-smoke

The options shared with request-level calibration (model, device, dtype, meter, trials, seed, time budget,
resume, overwrite) mean the same here; the ones below are the sweep's own. Request-level options that a
serving sweep would silently ignore (--batch-size, --no-kv-cache, --input-tokens, ...) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from hybridsim.core.cli_types import FiniteFloat
from hybridsim.core.errors import HybridsimError

QUICK_SERVING = {
    "batch_sizes": (1, 4),
    "prompt_lengths": (16, 128),
    "context_lengths": (16, 128),
    "min_trials": 3,
    "max_trials": 4,
    "warmup": 1,
    "min_window_s": 0.05,
    "idle_window_s": 0.5,
}
"""The `--serving --quick` smoke test: eight settings, a few short trials each."""
_IDLE_S_UNREAD = (
    "--idle-s: with --serving only RAPL reads it (the baseline subtracted from every pass), not --meter "
    "{meter}; the idle power is measured over --idle-window-s"
)
REQUEST_LEVEL_ONLY = {
    "batch_size": ("--batch-size", 1),
    "kv_cache": ("--no-kv-cache", True),  # an explicit --kv-cache is what a serving sweep does
    "input_tokens": ("--input-tokens", None),
    "output_tokens": ("--output-tokens", None),
    "max_input": ("--max-input", None),
    "max_output": ("--max-output", None),
    "fixed_input": ("--fixed-input", None),
    "fixed_output": ("--fixed-output", None),
    "grid": ("--grid", False),
}
"""Options of request-level calibration that mean nothing to a serving sweep, and their defaults."""


def serving_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The serving sweep's own options, added to `hybridsim calibrate`."""
    options = [
        click.option(
            "--serving",
            is_flag=True,
            help="Measure serving tables (prefill passes and decode "
            "iterations over batch sizes, KV cache on) instead of whole requests.",
        ),
        click.option("--batch-sizes", default=None, help="--serving: batch sizes [1,2,4,8,16,32,64]."),
        click.option(
            "--prompt-lengths",
            default=None,
            help="--serving: prompt tokens per request of the prefill passes [128,512,2048].",
        ),
        click.option(
            "--context-lengths",
            default=None,
            help="--serving: KV tokens per request of the decode iterations [128,512,2048].",
        ),
        click.option(
            "--ci-relative",
            type=FiniteFloat(-math.inf),  # NaN and infinities refused; ranges checked below
            default=None,
            help="--serving: stop repeating a setting "
            "when the 95% CI half-width of its pass time is at most this fraction of the mean [0.05].",
        ),
        click.option(
            "--min-window-s",
            type=FiniteFloat(-math.inf),  # NaN and infinities refused; ranges checked below
            default=None,
            help="--serving: repeat a pass inside one "
            "meter window for at least this long, report per pass [0.5].",
        ),
        click.option(
            "--idle-window-s",
            type=FiniteFloat(-math.inf),  # NaN and infinities refused; ranges checked below
            default=None,
            help="--serving: meter the idle machine "
            "this long before the sweep for the profile's idle power; 0 skips it [10].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_not_request_level(params: dict[str, Any]) -> None:
    """Refuse request-level options given with --serving (they would be ignored), even at their defaults:
    `--batch-size 1` or `--ci-halfwidth 0.5` typed out would be ignored just the same."""
    for name, (option, default) in REQUEST_LEVEL_ONLY.items():
        if params.get(name) != default or (name != "kv_cache" and _typed(name)):
            raise HybridsimError(
                f"{option}: does not apply to --serving (see --batch-sizes, --prompt-lengths)"
            )
    if params.get("ci_halfwidth") not in (None, 0.5) or _typed("ci_halfwidth"):
        raise HybridsimError("--ci-halfwidth: does not apply to --serving (use --ci-relative)")


def _typed(name: str) -> bool:
    """Whether the command line (or the environment) set the parameter `name`, rather than its default."""
    context = click.get_current_context(silent=True)
    if context is None:
        return False
    source = context.get_parameter_source(name)
    return source is not None and source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def refuse_serving_options(params: dict[str, Any]) -> None:
    """Refuse the serving sweep's options without --serving."""
    for name in (
        "batch_sizes",
        "prompt_lengths",
        "context_lengths",
        "ci_relative",
        "min_window_s",
        "idle_window_s",
    ):
        if params.get(name) is not None:
            raise HybridsimError(f"--{name.replace('_', '-')}: only applies with --serving")


def calibrate_serving(params: dict[str, Any], command_started: float, command_line: str) -> None:
    """Run `hybridsim calibrate --serving` with the command's parsed `params`."""
    check_not_request_level(params)
    from .cli_meter import check_meter_options, choose_meter, nvml_indices
    from .cli_options import pick, token_list
    from .cli_out_dir import prepare_out_dir
    from .runner import RunnerConfig, check_device
    from .serving_plan import BATCH_SIZES, CONTEXT_LENGTHS, PROMPT_LENGTHS, ServingConfig, plan_serving

    base: dict[str, Any] = QUICK_SERVING if params["quick"] else {}
    runner_config = RunnerConfig(
        model=params["model"],
        arch=params["arch"],
        dtype=params["dtype"],
        device=params["device"],
        batch_size=1,
        kv_cache=True,
        seed=params["seed"],
        allow_download=params["allow_download"],
    )
    runner_config.validate()
    if params["arch"] is not None:
        from .archs import load_arch

        load_arch(params["arch"])
    meter_options = {
        "--tdp-w": params["tdp_w"],
        "--accelerator-w": params["accelerator_w"],
        "--idle-s": params["idle_s"],
        "--uprof-csv": params["uprof_csv"],
    }
    check_meter_options(params["meter_name"], meter_options)
    if params["idle_s"] is not None and params["meter_name"] in ("nvidia", "powermetrics"):
        raise HybridsimError(_IDLE_S_UNREAD.format(meter=params["meter_name"]))
    config = ServingConfig(
        batch_sizes=token_list("--batch-sizes", params["batch_sizes"])
        or base.get("batch_sizes", BATCH_SIZES),
        prompt_lengths=token_list("--prompt-lengths", params["prompt_lengths"])
        or base.get("prompt_lengths", PROMPT_LENGTHS),
        context_lengths=token_list("--context-lengths", params["context_lengths"])
        or base.get("context_lengths", CONTEXT_LENGTHS),
        ci_relative=params["ci_relative"] if params["ci_relative"] is not None else 0.05,
        min_trials=pick(params["min_trials"], base.get("min_trials"), 3),
        max_trials=pick(params["max_trials"], base.get("max_trials"), 15),
        warmup=pick(params["warmup"], base.get("warmup"), 1),
        min_window_s=_first(params["min_window_s"], base.get("min_window_s"), 0.5),
        seed=params["seed"],
        time_budget_s=params["time_budget_s"],
    )
    n_settings = len(plan_serving(config))
    idle_window_s = _first(params["idle_window_s"], base.get("idle_window_s"), 10.0)
    if idle_window_s < 0:
        raise HybridsimError(f"--idle-window-s: must be >= 0, got {idle_window_s:g}")
    out_dir: Path = params["out_dir"]
    prepare_out_dir(out_dir, params["resume"], params["overwrite"], apply=False)
    check_device(params["device"])
    meter = choose_meter(
        params["meter_name"],
        gpu_indices=nvml_indices(params["device"]),
        tdp_w=params["tdp_w"],
        accelerator_w=params["accelerator_w"],
        rapl_idle_s=params["idle_s"],
        uprof_csv=params["uprof_csv"],
    )
    if params["idle_s"] is not None and not any(
        part.name == "rapl" for part in [meter, *getattr(meter, "meters", [])]
    ):
        meter.close()  # --meter auto found no RAPL: nothing would read --idle-s
        raise HybridsimError(_IDLE_S_UNREAD.format(meter=f"auto (it chose {meter.name})"))
    click.echo(
        f"meter: {meter.name}{' (ESTIMATED, no energy counter)' if meter.estimated else ''}"
        f"{f' - {meter.scope}' if meter.scope else ''}"
    )
    with meter:
        from .cli_serving_run import run_serving

        run = {
            "model": params["model"],
            "arch": params["arch"],
            "dtype": params["dtype"],
            "device": params["device"],
            "batch_size": "serving",
            "kv_cache": True,
            "meter": meter.name,
            "seed": params["seed"],
            "serving": {k: v for k, v in vars(config).items() if k != "time_budget_s"},
        }
        run_serving(
            out_dir,
            runner_config,
            config,
            meter,
            n_settings,
            run=run,
            params=params,
            idle_window_s=idle_window_s,
            command_started=command_started,
            command_line=command_line,
        )


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return float(value)
    raise AssertionError("no default")
