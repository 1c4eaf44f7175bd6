"""One request-sweep calibration, once its options are checked: build the model, measure, write the profile.

What `hybridsim calibrate` does after parsing: load and warm up the model, read the idle power, record the
run's context (machine, meter, command line), run the paper's protocol with its time budget, and write
`points.csv` + `profile.json` after every finished setting, so that an interrupted run keeps its trials.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from hybridsim.core.errors import HybridsimError
from hybridsim.core.stop_signals import Terminated, saved_and_stopped

from .cli_out_dir import prepare_out_dir


def run_calibration(
    out_dir: Path,
    runner_config: Any,
    protocol: Any,
    meter: Any,
    n_settings: int,
    *,
    run: dict[str, Any],
    previous: Any,
    system: str | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
    command_started: float,
    idle_s: float | None = None,
) -> None:
    """Build the model, record the run's context, run the protocol and write the profile.

    Nothing is written to `out_dir` until the model is built, warmed up and the time budget is known to
    leave room for trials: a run that fails before then leaves no calibration behind.
    """
    from dataclasses import replace

    from . import system_info
    from .cli_meter import idle_power
    from .profile_writer import CalibrationContext, run_record, save_context, write_profile
    from .protocol import run_protocol
    from .runner import TransformersRunner

    runner = TransformersRunner(runner_config)
    description = runner.describe()
    click.echo(
        f"model: {description['model']} ({description['parameters'] / 1e6:,.1f} M parameters, "
        f"{runner_config.dtype}) on {runner_config.device}, built in {description['load_time_s']:.1f} s; "
        f"KV cache {'on' if runner_config.kv_cache else 'off'}, batch {runner_config.batch_size}"
    )
    warm_s = runner.warm_up()
    idle_w, idle_source = idle_power(meter, idle_s)
    info = system_info.collect(runner_config.device)
    context = CalibrationContext(
        system=system or info["device_name"],
        device_name=info["device_name"],
        model=description["model"],
        dtype=runner_config.dtype,
        meter=meter.name,
        energy_scope=meter.scope or "unspecified by the meter",
        estimated=bool(meter.estimated),
        kv_cache=runner_config.kv_cache,
        batch_size=runner_config.batch_size,
        command=command_line(),
        run=run,
        idle_power_w=idle_w,
        idle_power_source=idle_source,
        extra=run_record(info, description, warm_s, meter),
        notes=(
            "random token ids as prompts; greedy decoding of exactly n tokens, EOS ignored; two unrecorded "
            "8-in/8-out generations before the first setting, then per setting warm-up trials (excluded)",
        ),
    )
    if previous is not None:
        from .profile_writer import extended_run

        context = replace(
            context,
            command=f"{previous.command}; resumed: {context.command}",
            run=extended_run(previous, run),
        )
    if protocol.time_budget_s is not None:
        protocol_budget_s = protocol.time_budget_s
        spent = time.monotonic() - command_started
        budget = protocol_budget_s - spent - min(20.0, 0.05 * protocol_budget_s)
        if budget <= 0:
            raise HybridsimError(
                f"--time-budget-s: {protocol_budget_s:g} s is used up by start-up ({spent:.0f} s)"
            )
        protocol = replace(protocol, time_budget_s=budget)
        # The estimates above decide what to start; this deadline stops a trial that outlives its estimate.
        runner.deadline = command_started + protocol_budget_s - min(10.0, 0.025 * protocol_budget_s)
    prepare_out_dir(out_dir, resume, overwrite, apply=True)
    save_context(out_dir, context)
    click.echo(f"{n_settings} settings; trials -> {out_dir / 'trials.csv'}")
    try:
        summary = run_protocol(
            runner,
            meter,
            out_dir,
            protocol,
            kv_cache=runner_config.kv_cache,
            after_setting=lambda: write_profile(out_dir, context),
            progress=progress,
        )
    except (KeyboardInterrupt, Terminated) as stop:  # Ctrl-C, or a scheduler's SIGTERM at its time limit
        write_profile(out_dir, context)
        raise saved_and_stopped(
            stop, f"every finished trial is in {out_dir / 'trials.csv'}; continue with --resume"
        ) from None
    finally:
        runner.close()
    profile = write_profile(out_dir, context)
    click.echo(
        f"{summary.settings_done} settings measured, {summary.settings_oom} out of memory, "
        f"{summary.settings_skipped} skipped, {summary.settings_failed} failed; "
        f"{summary.trials_run} trials "
        f"in {summary.elapsed_s:.1f} s"
    )
    if summary.stopped_for_budget:
        click.echo(
            f"time budget reached with {len(summary.settings_left)} settings left; "
            "run the same command with --resume to continue"
        )
        budget_s = protocol.time_budget_s or 0.0
        too_long = [
            f"{label} (~{estimate:.0f} s)"
            for label, estimate in summary.settings_left
            if estimate is not None and estimate > budget_s
        ]
        if too_long:
            click.echo(
                f"these need more than a whole budget of {budget_s:.0f} s and will not fit: "
                f"{', '.join(too_long)}; raise --time-budget-s, lower --min-trials/--warmup, "
                "or leave them out (--max-input/--max-output)"
            )
    if profile is None:
        click.echo("nothing measured yet: no profile written")
    else:
        label = ", ESTIMATED" if profile.metadata.estimated else ""
        click.echo(f"profile: {out_dir} ({len(profile.points)} points{label})")
        anchor = profile.points[
            (profile.points["input_tokens"] == protocol.fixed_input)
            & (profile.points["output_tokens"] == protocol.fixed_output)
        ]
        if len(anchor) and anchor["n_trials"].iloc[0] > 0:
            row = anchor.iloc[0]
            click.echo(
                f"at {protocol.fixed_input} in / {protocol.fixed_output} out tokens: "
                f"{row['energy_j_mean']:.3g} J, {row['runtime_s_mean']:.3g} s per request"
            )


def command_line() -> str:
    args = sys.argv[1:]
    if "calibrate" in args:
        args = args[args.index("calibrate") + 1 :]
    return "hybridsim calibrate " + shlex.join(args)
