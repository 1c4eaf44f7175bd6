"""`hybridsim calibrate`: measure this machine and write a profile the simulator reads.

    # NVIDIA server: GPU board energy from NVML, plus RAPL for the CPU where readable (auto says which)
    hybridsim calibrate --device cuda --arch llama2-7b --out profiles/h100-llama2 --system H100-SXM
    #   the paper's setting (no KV cache), CPU idle subtracted, stopping cleanly within 9 minutes:
    hybridsim calibrate --device cuda --arch llama2-7b --no-kv-cache --meter auto --idle-s 10 \
        --time-budget-s 540 --out profiles/h100-llama2-nokv      # then the same with --resume
    # Apple Silicon (powermetrics needs root: run with sudo), fp16 as in the paper:
    sudo hybridsim calibrate --device mps --dtype float16 --arch llama2-7b --meter powermetrics \
        --system M1-Pro --out profiles/m1-llama2
    # CPU host: RAPL (root, or readable energy_uj files); with no counter at all, ask for the estimate by name
    hybridsim calibrate --device cpu --dtype bfloat16 --arch llama2-7b --meter rapl --idle-s 10 --out ...
    hybridsim calibrate --device cpu --arch tiny-llama --meter estimated --quick --out /tmp/smoke

The run follows the paper's protocol (`plan.py`, `protocol.py`): input sweep 8 ... 2048 at 32 output tokens,
output sweep 8 ... 4096 at 32 input tokens, each setting repeated until the runtime's 95% CI half-width is at
most 0.5 s (3 to 25 warm trials). Trials go to `<out>/trials.csv` as they finish; `--resume` continues an
interrupted run; `--time-budget-s` stops cleanly before a deadline. Nothing heavy is imported until the
command runs, so `hybridsim --help` works without the `calibrate` extra (torch, transformers).

Needs neither simpy nor pydantic (the simulator's dependencies), as `hybridsim calibrate` or as
`python -m hybridsim.calibration.cli ...`.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from hybridsim.core.atomic import write_text_atomic
from hybridsim.core.cli_types import TOKENS_MAX, FiniteFloat, bounded_int
from hybridsim.core.errors import HybridsimError, Interrupted
from hybridsim.core.output_guard import (
    MARKER,
    check_output_path,
    existing_output,
    marker_text,
    refuse_foreign,
)

from .cli_serving import calibrate_serving, refuse_serving_options, serving_options

QUICK: dict[str, Any] = {
    "input_tokens": (8, 16),
    "output_tokens": (8, 16),
    "fixed_input": 16,
    "fixed_output": 16,
    "min_trials": 2,
    "max_trials": 3,
    "warmup": 1,
}
"""The `--quick` smoke test: three settings, a few trials each."""
OWN_FILES = (
    "trials.csv",
    "points.csv",
    "profile.json",
    "calibration.json",
    "serving_trials.csv",
    "serving_prefill.csv",
    "serving_decode.csv",
)
"""The files a calibration writes in --out; with --overwrite only these are removed, never others there."""
KIND = "calibration"
"""The kind of output a calibration directory's marker names."""


class _OneLineErrors(click.Command):
    """Usage errors (an unknown option, a value of the wrong type) as one
    `HybridsimError` line, like the rest.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise HybridsimError(
                f"calibrate: {error.format_message()} (see hybridsim calibrate --help)"
            ) from None


def _require_calibrate_extra() -> None:
    """torch and transformers are an optional extra: without them, say how to get them, in one line."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise HybridsimError(
            f"calibrate needs {' and '.join(missing)}: pip install 'hybridsim[calibrate]' "
            "with the torch build for your accelerator (README: Calibrating your own hardware)"
        )


def _token_list(option: str, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    except ValueError:
        raise HybridsimError(
            f"{option}: expected comma-separated token counts like 8,16,32, got {text!r}"
        ) from None
    if not values or values[0] < 1:
        raise HybridsimError(f"{option}: token counts must be positive integers, got {text!r}")
    if values[-1] > TOKENS_MAX:
        raise HybridsimError(f"{option}: {values[-1]} tokens is beyond the limit of {TOKENS_MAX:,}")
    return values


@click.command(cls=_OneLineErrors)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Profile directory to write (trials.csv, points.csv, profile.json, calibration.json).",
)
@click.option(
    "--arch",
    default=None,
    help="Bundled architecture, randomly initialised: llama2-7b, mistral-7b, "
    "falcon-7b, tiny-llama, tiny-mistral, tiny-falcon. No weights, no network.",
)
@click.option(
    "--model", default=None, help="Local model directory or hub id (offline unless --allow-download)."
)
@click.option("--allow-download", is_flag=True, help="Let --model fetch from the Hugging Face hub.")
@click.option("--dtype", default="bfloat16", show_default=True, help="float32, float16 or bfloat16.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or mps.")
@click.option(
    "--batch-size",
    type=bounded_int(1, 4096),
    default=1,
    show_default=True,
    help="Rows of the same length per trial; energy and runtime are then per batch.",
)
@click.option(
    "--kv-cache/--no-kv-cache",
    default=True,
    show_default=True,
    help="Generate with the KV cache (the paper ran without it).",
)
@click.option(
    "--meter",
    "meter_name",
    default="auto",
    show_default=True,
    help="auto, nvidia, rapl, powermetrics, uprof or estimated (auto says which it picked).",
)
@click.option(
    "--tdp-w",
    type=FiniteFloat(0.0, strictly_above=True),
    default=None,
    help="CPU power for --meter estimated (W) [4 W per logical CPU].",
)
@click.option(
    "--accelerator-w",
    type=FiniteFloat(0.0),
    default=None,
    help="Constant accelerator power for --meter estimated (W); without it the estimate has no GPU term.",
)
@click.option(
    "--idle-s",
    type=FiniteFloat(0.0),
    default=None,
    help="RAPL (--meter rapl or auto): measure the idle baseline this long before the run and subtract it "
    "(the paper's eq. 7). NVML, powermetrics: the length of the idle window measured before the sweep "
    "(default 5 s), recorded as the profile's idle power.",
)
@click.option(
    "--uprof-csv",
    type=click.Path(path_type=Path),
    default=None,
    help="AMD uProf timechart CSV for --meter uprof; uProf writes it when its session ends, so it must "
    "already cover every trial's window (offline use).",
)
@click.option("--system", default=None, help="Name of this machine in the profile, e.g. 'H100-SXM'.")
@click.option("--input-tokens", default=None, help="Input sweep lengths, e.g. 8,16,32 (default 8 ... 2048).")
@click.option("--output-tokens", default=None, help="Output sweep lengths (default 8 ... 4096).")
@click.option("--max-input", type=bounded_int(1), default=None, help="Drop input lengths above this.")
@click.option("--max-output", type=bounded_int(1), default=None, help="Drop output lengths above this.")
@click.option(
    "--fixed-output",
    type=bounded_int(1, TOKENS_MAX),
    default=None,
    help="Output tokens of the input sweep [32].",
)
@click.option(
    "--fixed-input",
    type=bounded_int(1, TOKENS_MAX),
    default=None,
    help="Input tokens of the output sweep [32].",
)
@click.option("--grid", is_flag=True, help="Also measure every input x output pair (for the bilinear fit).")
@click.option(
    "--ci-halfwidth",
    type=FiniteFloat(0.0, strictly_above=True),
    default=0.5,
    show_default=True,
    help="Stop repeating a setting when the runtime's 95% CI half-width is at most this (s).",
)
@click.option(
    "--min-trials", type=bounded_int(1, 10_000), default=None, help="Warm trials at least per setting [3]."
)
@click.option(
    "--max-trials", type=bounded_int(1, 10_000), default=None, help="Warm trials at most per setting [25]."
)
@click.option(
    "--warmup",
    type=bounded_int(0, 10_000),
    default=None,
    help="Warm-up trials per setting, recorded, excluded [1].",
)
@click.option(
    "--seed",
    type=bounded_int(0),
    default=0,
    show_default=True,
    help="Order of settings and prompt token ids.",
)
@click.option(
    "--time-budget-s",
    type=FiniteFloat(0.0, strictly_above=True),
    default=None,
    help="Stop cleanly before this many seconds (from the start of the command); --resume continues.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out: finished settings are skipped.")
@click.option("--overwrite", is_flag=True, help="Delete a previous calibration in --out and start over.")
@click.option("--quick", is_flag=True, help="Smoke test: inputs 8,16, outputs 8,16, 2-3 trials each.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@serving_options
def calibrate(
    out_dir: Path,
    arch: str | None,
    model: str | None,
    allow_download: bool,
    dtype: str,
    device: str,
    batch_size: int,
    kv_cache: bool,
    meter_name: str,
    tdp_w: float | None,
    accelerator_w: float | None,
    idle_s: float | None,
    uprof_csv: Path | None,
    system: str | None,
    input_tokens: str | None,
    output_tokens: str | None,
    max_input: int | None,
    max_output: int | None,
    fixed_output: int | None,
    fixed_input: int | None,
    grid: bool,
    ci_halfwidth: float,
    min_trials: int | None,
    max_trials: int | None,
    warmup: int | None,
    seed: int,
    time_budget_s: float | None,
    resume: bool,
    overwrite: bool,
    quick: bool,
    no_progress: bool,
    **serving: Any,
) -> None:
    """Measure runtime and energy of an LLM at exact token counts and write a profile (with --serving:
    the cost of prefill passes and decode iterations over batch sizes, `cli_serving.py`)."""
    command_started = time.monotonic()
    _require_calibrate_extra()
    if serving.pop("serving"):
        calibrate_serving({**locals(), **serving}, command_started, _command_line())
        return
    refuse_serving_options(serving)
    from .cli_meter import check_meter_options, choose_meter, nvml_indices
    from .plan import INPUT_SWEEP, OUTPUT_SWEEP, ProtocolConfig, plan_settings
    from .profile_writer import resumable_context
    from .runner import RunnerConfig, check_device

    runner_config = RunnerConfig(
        model=model,
        arch=arch,
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        kv_cache=kv_cache,
        seed=seed,
        allow_download=allow_download,
    )
    runner_config.validate()
    if arch is not None:
        from .archs import load_arch

        load_arch(arch)  # an unknown name fails now, not after the meter's idle measurement
    meter_options = {
        "--tdp-w": tdp_w,
        "--accelerator-w": accelerator_w,
        "--idle-s": idle_s,
        "--uprof-csv": uprof_csv,
    }
    check_meter_options(meter_name, meter_options)
    base = QUICK if quick else {}
    inputs = _capped(
        "--max-input",
        max_input,
        _token_list("--input-tokens", input_tokens) or base.get("input_tokens", INPUT_SWEEP),
    )
    outputs = _capped(
        "--max-output",
        max_output,
        _token_list("--output-tokens", output_tokens) or base.get("output_tokens", OUTPUT_SWEEP),
    )
    protocol = ProtocolConfig(
        input_tokens=inputs,
        output_tokens=outputs,
        fixed_output=_pick(fixed_output, base.get("fixed_output"), 32),
        fixed_input=_pick(fixed_input, base.get("fixed_input"), 32),
        grid=grid,
        ci_halfwidth_s=ci_halfwidth,
        min_trials=_pick(min_trials, base.get("min_trials"), 3),
        max_trials=_pick(max_trials, base.get("max_trials"), 25),
        warmup=_pick(warmup, base.get("warmup"), 1),
        seed=seed,
        time_budget_s=time_budget_s,
    )
    n_settings = len(plan_settings(protocol))
    _prepare_out_dir(out_dir, resume, overwrite, apply=False)
    check_device(device)  # before the meter, which may spend --idle-s measuring

    meter = choose_meter(
        meter_name,
        gpu_indices=nvml_indices(device),
        tdp_w=tdp_w,
        accelerator_w=accelerator_w,
        rapl_idle_s=idle_s,
        uprof_csv=uprof_csv,
    )
    click.echo(
        f"meter: {meter.name}{' (ESTIMATED, no energy counter)' if meter.estimated else ''}"
        f"{f' - {meter.scope}' if meter.scope else ''}"
    )
    if meter_name == "estimated" and accelerator_w is None and device != "cpu":
        click.echo(f"note: --meter estimated has no {device} term (0 J) unless --accelerator-w is given")
    with meter:
        run = {
            "model": model,
            "arch": arch,
            "dtype": dtype,
            "device": device,
            "batch_size": batch_size,
            "kv_cache": kv_cache,
            "meter": meter.name,
            "seed": seed,
            "protocol": {k: v for k, v in vars(protocol).items() if k != "time_budget_s"},
        }
        previous = resumable_context(out_dir, run) if resume else None
        _run(
            out_dir,
            runner_config,
            protocol,
            meter,
            n_settings,
            run=run,
            previous=previous,
            system=system,
            resume=resume,
            overwrite=overwrite,
            progress=not no_progress,
            command_started=command_started,
            idle_s=idle_s,
        )


def _capped(option: str, cap: int | None, values: tuple[int, ...]) -> tuple[int, ...]:
    """`values` up to `cap` (--max-input, --max-output); an error when none is left."""
    kept = tuple(v for v in values if cap is None or v <= cap)
    if not kept:
        raise HybridsimError(f"{option} {cap}: leaves no token counts (the smallest is {min(values)})")
    return kept


def _run(
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
    from .profile_writer import CalibrationContext, save_context, write_profile
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
    describe_meter = getattr(meter, "describe", None)
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
        command=_command_line(),
        run=run,
        idle_power_w=idle_w,
        idle_power_source=idle_source,
        extra={
            "system_info": info,
            "runner": {**description, "global_warm_up_s": round(warm_s, 3)},
            "meter": describe_meter() if describe_meter else {"meter": meter.name},
        },
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
    _prepare_out_dir(out_dir, resume, overwrite, apply=True)
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
    except KeyboardInterrupt:
        write_profile(out_dir, context)
        raise Interrupted(
            f"interrupted: every finished trial is in {out_dir / 'trials.csv'}; continue with --resume"
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


def _pick(explicit: int | None, quick: int | None, default: int) -> int:
    return explicit if explicit is not None else quick if quick is not None else default


def _prepare_out_dir(out_dir: Path, resume: bool, overwrite: bool, apply: bool) -> None:
    """Check (`apply=False`, before anything slow) and then make ready the output directory."""
    if resume and overwrite:
        raise HybridsimError("calibrate: --resume and --overwrite contradict each other")
    check_output_path(out_dir)
    present = [name for name in OWN_FILES if (out_dir / name).exists()]
    existing = existing_output(out_dir, KIND)
    if existing.state == "other":
        raise HybridsimError(
            f"--out {out_dir}: holds a hybridsim {existing.kind} output, not a "
            "calibration; name another folder"
        )
    if existing.state == "foreign" and not present and not overwrite:
        refuse_foreign(out_dir, existing, KIND, "--out")
    if present and not (resume or overwrite):
        raise HybridsimError(
            f"--out {out_dir}: holds a calibration already ({', '.join(present)}); "
            "pass --resume to continue it or --overwrite to start over"
        )
    if apply:
        for name in present if overwrite else ():
            (out_dir / name).unlink()
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / MARKER, marker_text(KIND, list(OWN_FILES)))


def _command_line() -> str:
    args = sys.argv[1:]
    if "calibrate" in args:
        args = args[args.index("calibrate") + 1 :]
    return "hybridsim calibrate " + shlex.join(args)


def main() -> None:
    """Entry point of `python -m hybridsim.calibration.cli` (no simpy or pydantic needed)."""
    from hybridsim.core.program import run_main

    run_main(calibrate, "hybridsim calibrate")


if __name__ == "__main__":
    main()
