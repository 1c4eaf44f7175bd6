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

import time
from pathlib import Path
from typing import Any

import click

from hybridsim.core.cli_types import TOKENS_MAX, FiniteFloat, bounded_int

from .cli_options import QUICK, OneLineErrors, capped, pick, require_calibrate_extra, token_list
from .cli_out_dir import prepare_out_dir
from .cli_run import command_line, run_calibration
from .cli_serving import calibrate_serving, refuse_serving_options, serving_options


@click.command(cls=OneLineErrors)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Profile directory to write (trials.csv, points.csv, profile.json, calibration.json; with "
    "--serving, serving_trials.csv, serving_prefill.csv and serving_decode.csv instead of the first two).",
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
    "(default 5 s; 0 skips it), recorded as the profile's idle power. With --serving, RAPL's baseline only "
    "(the idle window is --idle-window-s).",
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
    the cost of prefill passes and decode iterations over batch sizes).

    \b
    hybridsim calibrate --device cuda --arch llama2-7b --meter nvidia --out profiles/h100
    hybridsim calibrate --device cpu --arch tiny-llama --meter estimated --quick --out /tmp/tiny
    """
    # --serving's sweep lives in cli_serving.py.
    command_started = time.monotonic()
    require_calibrate_extra()
    if serving.pop("serving"):
        calibrate_serving({**locals(), **serving}, command_started, command_line())
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
    inputs = capped(
        "--max-input",
        max_input,
        token_list("--input-tokens", input_tokens) or base.get("input_tokens", INPUT_SWEEP),
    )
    outputs = capped(
        "--max-output",
        max_output,
        token_list("--output-tokens", output_tokens) or base.get("output_tokens", OUTPUT_SWEEP),
    )
    protocol = ProtocolConfig(
        input_tokens=inputs,
        output_tokens=outputs,
        fixed_output=pick(fixed_output, base.get("fixed_output"), 32),
        fixed_input=pick(fixed_input, base.get("fixed_input"), 32),
        grid=grid,
        ci_halfwidth_s=ci_halfwidth,
        min_trials=pick(min_trials, base.get("min_trials"), 3),
        max_trials=pick(max_trials, base.get("max_trials"), 25),
        warmup=pick(warmup, base.get("warmup"), 1),
        seed=seed,
        time_budget_s=time_budget_s,
    )
    n_settings = len(plan_settings(protocol))
    prepare_out_dir(out_dir, resume, overwrite, apply=False)
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
        run_calibration(
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


def main() -> None:
    """Entry point of `python -m hybridsim.calibration.cli` (no simpy or pydantic needed)."""
    from hybridsim.core.program import run_main

    run_main(calibrate, "hybridsim calibrate")


if __name__ == "__main__":
    main()
