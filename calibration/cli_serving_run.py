"""The body of `hybridsim calibrate --serving`: build the model, record the run, sweep, write the profile.

Mirrors the request-level `run_calibration` in `cli_run.py`: nothing is written to `--out` until the model
is built and warmed up; the run's record (`calibration.json`) carries what does not change while it goes
on, here also the KV-cache capacity (device memory, weights, KV bytes per token, headroom) and the idle
power.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from hybridsim.core.errors import HybridsimError
from hybridsim.core.stop_signals import Terminated, saved_and_stopped

HEADROOM_FRACTION = 0.10
"""Device memory kept free of weights and KV cache (vLLM's default `gpu_memory_utilization` 0.9)."""


def run_serving(
    out_dir: Path,
    runner_config: Any,
    config: Any,
    meter: Any,
    n_settings: int,
    *,
    run: dict[str, Any],
    params: dict[str, Any],
    idle_window_s: float,
    command_started: float,
    command_line: str,
) -> None:
    from . import system_info
    from .cli_meter import measure_idle_w
    from .cli_out_dir import prepare_out_dir
    from .profile_writer import CalibrationContext, resumable_context, run_record, save_context
    from .serving_protocol import SERVING_TRIALS_FILE, run_serving_protocol
    from .serving_runner import ServingRunner
    from .serving_writer import kv_capacity, write_serving_profile

    previous = resumable_context(out_dir, run) if params["resume"] else None
    runner = ServingRunner(runner_config, config.min_window_s)
    description = runner.describe()
    click.echo(
        f"model: {description['model']} ({description['parameters'] / 1e6:,.1f} M parameters, "
        f"{runner_config.dtype}) on {runner_config.device}; serving sweep, KV cache on"
    )
    warm_s = runner.base.warm_up()
    idle_w, idle_source = measure_idle_w(meter, idle_window_s)
    if idle_w is not None:
        click.echo(f"idle power: {idle_w:.3g} W ({idle_source})")
    kv = kv_capacity(
        runner.device_memory_bytes(),
        runner.weights_bytes(),
        runner.kv_bytes_per_token(),
        HEADROOM_FRACTION,
        f"--device {runner_config.device}",
    )
    info = system_info.collect(runner_config.device)
    context = CalibrationContext(
        system=params["system"] or info["device_name"],
        device_name=info["device_name"],
        model=description["model"],
        dtype=runner_config.dtype,
        meter=meter.name,
        energy_scope=f"{meter.scope or 'unspecified by the meter'}; serving passes: the gross energy "
        "of each pass (idle draw included, nothing subtracted), idle power stated separately",
        estimated=bool(meter.estimated),
        kv_cache=True,
        batch_size=1,
        command=command_line,
        run=run,
        idle_power_w=idle_w,
        idle_power_source=idle_source,
        extra={
            **run_record(info, description, warm_s, meter),
            "serving": {**kv, "tensor_parallel": 1, "idle_power_w": idle_w, "idle_power_source": idle_source},
        },
        notes=(
            "serving sweep: random token ids; prefill passes fill an empty KV cache and keep the last "
            "position's logits; decode iterations add one token to each request of a prefilled cache, which "
            "is cut back after every repetition; each trial repeats its pass for --min-window-s in one meter "
            "window and reports per pass",
        ),
    )
    if previous is not None:
        context = replace(context, command=f"{previous.command}; resumed: {context.command}")
    if config.time_budget_s is not None:
        spent = time.monotonic() - command_started
        budget = config.time_budget_s - spent - min(20.0, 0.05 * config.time_budget_s)
        if budget <= 0:
            raise HybridsimError(
                f"--time-budget-s: {config.time_budget_s:g} s is used up by start-up ({spent:.0f} s)"
            )
        runner.deadline = command_started + config.time_budget_s - min(10.0, 0.025 * config.time_budget_s)
        config = replace(config, time_budget_s=budget)
    prepare_out_dir(out_dir, params["resume"], params["overwrite"], apply=True)
    save_context(out_dir, context)
    click.echo(f"{n_settings} settings; trials -> {out_dir / SERVING_TRIALS_FILE}")
    try:
        summary = run_serving_protocol(
            runner,
            meter,
            out_dir,
            config,
            after_setting=lambda: write_serving_profile(out_dir, context),
            progress=not params["no_progress"],
        )
    except (KeyboardInterrupt, Terminated) as stop:  # Ctrl-C, or a scheduler's SIGTERM at its time limit
        write_serving_profile(out_dir, context)
        raise saved_and_stopped(
            stop, f"every finished trial is in {out_dir / SERVING_TRIALS_FILE}; continue with --resume"
        ) from None
    finally:
        runner.close()
    profile = write_serving_profile(out_dir, context)
    click.echo(
        f"{summary.settings_done} settings measured, {summary.settings_oom} out of memory, "
        f"{summary.settings_skipped} skipped; {summary.trials_run} trials in {summary.elapsed_s:.1f} s"
    )
    if summary.stopped_for_budget:
        click.echo(
            f"time budget reached with {len(summary.settings_left)} settings left; "
            "run the same command with --resume to continue"
        )
    if profile is None or profile.serving is None:
        click.echo("no prefill and decode pass measured yet: no profile written")
        return
    label = ", ESTIMATED" if profile.metadata.estimated else ""
    click.echo(
        f"profile: {out_dir} ({len(profile.serving.prefill)} prefill, {len(profile.serving.decode)} decode "
        f"rows{label}; KV cache {profile.serving.kv_capacity_tokens:,} tokens)"
    )
