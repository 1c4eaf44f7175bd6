"""`hybridsim calibrate --serving`: the plan, the protocol (CI rule, OOM ends a row, budget, resume), the
written serving profile, and the whole command on the CPU with a tiny Llama and the estimated meter."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from calibration_fakes import FakeClock, FakeMeter, fake_context
from click.testing import CliRunner
from hybridsim.calibration.cli import calibrate
from hybridsim.calibration.meters.common import EnergyMeter
from hybridsim.calibration.runner import BudgetExhausted, OutOfMemory
from hybridsim.calibration.serving_plan import ServingConfig, ServingSetting, plan_serving
from hybridsim.calibration.serving_protocol import SERVING_TRIALS_FILE, run_serving_protocol
from hybridsim.calibration.serving_runner import PassResult
from hybridsim.calibration.serving_writer import kv_capacity, write_serving_profile
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model

from hybridsim.core.errors import HybridsimError, Interrupted
from hybridsim.core.profile_io import load_profile_dir, read_trials
from hybridsim.core.stop_signals import Terminated

CONFIG = ServingConfig(
    batch_sizes=(1, 4, 16),
    prompt_lengths=(16, 128),
    context_lengths=(16, 128, 512),
    min_trials=3,
    max_trials=6,
    warmup=1,
    min_window_s=0.0,
    seed=7,
)


def fake_pass_s(setting: ServingSetting) -> float:
    """The fake machine: a prefill grows with the batch's prompt tokens, a decode mostly with the batch."""
    tokens = setting.total_tokens
    if setting.table == "prefill":
        return 2e-3 + 1e-5 * tokens
    return 3e-3 + 2e-4 * setting.batch_size + 1e-7 * tokens


@dataclass
class FakePassRunner:
    oom_at: set[tuple[str, int, int]] = field(default_factory=set)
    clock: FakeClock | None = None
    deadline: float | None = None
    noise: float = 0.01
    min_window_s: float = 0.0
    calls: list[tuple[str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def run_trial(self, setting: ServingSetting, meter: EnergyMeter) -> PassResult:
        self.calls.append(setting.key)
        if setting.key in self.oom_at:
            raise OutOfMemory("CUDA out of memory. Tried to allocate 20.00 GiB")
        time_s = fake_pass_s(setting) * (1 + self.noise * self.rng.standard_normal())
        repeats = 10
        if self.clock is not None:
            if self.deadline is not None and self.clock.now + repeats * time_s > self.deadline:
                self.clock.now = self.deadline
                raise BudgetExhausted("the time budget ran out during a trial")
            self.clock.now += repeats * time_s
        meter.begin_window()
        assert isinstance(meter, FakeMeter)
        meter.pending_s = repeats * time_s
        measurement = meter.end_window()
        return PassResult(time_s, 10.0 * time_s, 30.0 * time_s, repeats, measurement, 12.0)


def serving_context(**changes: object) -> object:
    extra = {
        "serving": {
            **kv_capacity(2**34, 2**20, 4096, 0.1, "test"),
            "tensor_parallel": 1,
            "idle_power_w": 5.0,
            "idle_power_source": "test",
        }
    }
    return fake_context(extra=extra, **changes)


def test_the_plan_holds_every_pass_once_in_a_seeded_order() -> None:
    plan = plan_serving(CONFIG)
    assert len(plan) == 3 * 2 + 3 * 3 and len({s.key for s in plan}) == len(plan)
    assert plan == plan_serving(CONFIG)
    assert [s.key for s in plan] != [s.key for s in plan_serving(dataclasses.replace(CONFIG, seed=8))]
    with pytest.raises(HybridsimError, match="--batch-sizes: need one or more positive"):
        plan_serving(dataclasses.replace(CONFIG, batch_sizes=(0, 2)))


def test_every_pass_is_repeated_until_its_ci_is_tight_and_warm_ups_are_kept_apart(tmp_path: Path) -> None:
    runner = FakePassRunner(noise=0.2)
    summary = run_serving_protocol(runner, FakeMeter(), tmp_path, CONFIG, progress=False)
    assert summary.settings_done == 15 and summary.trials_run == len(runner.calls)
    trials = read_trials(tmp_path, SERVING_TRIALS_FILE)
    warm = trials[~trials["warmup"]]
    counts = warm.groupby(["table", "batch_size", "tokens_per_request"]).size()
    assert counts.min() >= CONFIG.min_trials and counts.max() <= CONFIG.max_trials
    assert (counts > CONFIG.min_trials).any()  # 20% noise: some passes needed more than the minimum
    assert (trials[trials["warmup"]].groupby(["table", "batch_size", "tokens_per_request"]).size() == 1).all()
    np.testing.assert_allclose(trials["energy_j"], 40.0 * trials["time_s"], rtol=1e-9)


def test_out_of_memory_ends_the_row_and_the_run_goes_on(tmp_path: Path) -> None:
    runner = FakePassRunner(oom_at={("decode", 4, 128)})
    summary = run_serving_protocol(runner, FakeMeter(), tmp_path, CONFIG, progress=False)
    trials = read_trials(tmp_path, SERVING_TRIALS_FILE)
    status = trials.groupby(["table", "batch_size", "tokens_per_request"])["status"].last()
    assert status[("decode", 4, 128)] == "oom"
    # larger in both batch and length: not tried (unless the plan reached it first, then measured)
    for key in (("decode", 4, 512), ("decode", 16, 128), ("decode", 16, 512)):
        assert status[key] in ("skipped", "ok")
        assert (status[key] == "skipped") == (
            runner.calls.index(("decode", 4, 128)) < _first_call(runner, key)
        )
    assert status[("decode", 16, 16)] == "ok" and status[("prefill", 16, 128)] == "ok"
    assert summary.settings_oom == 1 and summary.settings_done + summary.settings_skipped == 14
    write_serving_profile(tmp_path, serving_context())
    profile = load_profile_dir(tmp_path)
    assert profile.serving is not None
    decode = profile.serving.decode
    assert (
        decode.loc[(decode["batch_size"] == 4) & (decode["context_tokens"] == 512), "status"].item() == "oom"
    )


def _first_call(runner: FakePassRunner, key: tuple[str, int, int]) -> float:
    return runner.calls.index(key) if key in runner.calls else float("inf")


def test_a_time_budget_stops_cleanly_and_resume_finishes_the_same_sweep(tmp_path: Path) -> None:
    clock = FakeClock()
    runner = FakePassRunner(clock=clock)
    budget = dataclasses.replace(CONFIG, time_budget_s=0.3)
    first = run_serving_protocol(runner, FakeMeter(), tmp_path, budget, progress=False, clock=clock)
    assert first.stopped_for_budget and first.settings_left and clock.now <= 0.3 + 1e-9
    done_before = len(read_trials(tmp_path, SERVING_TRIALS_FILE))
    second = run_serving_protocol(FakePassRunner(), FakeMeter(), tmp_path, CONFIG, progress=False)
    assert not second.stopped_for_budget and second.settings_done == 15
    trials = read_trials(tmp_path, SERVING_TRIALS_FILE)
    assert len(trials) > done_before
    assert trials.groupby(["table", "batch_size", "tokens_per_request"]).size().shape[0] == 15
    again = run_serving_protocol(FakePassRunner(), FakeMeter(), tmp_path, CONFIG, progress=False)
    assert again.trials_run == 0  # nothing left to measure


def test_the_written_profile_prices_exactly_what_was_measured(tmp_path: Path) -> None:
    run_serving_protocol(FakePassRunner(), FakeMeter(), tmp_path, CONFIG, progress=False)
    written = write_serving_profile(tmp_path, serving_context())
    profile = load_profile_dir(tmp_path)
    assert written is not None and profile.serving is not None and profile.points.empty
    assert (
        profile.serving.idle_power_w == 5.0
        and profile.serving.kv_capacity_tokens == written.serving.kv_capacity_tokens
    )
    model = build_serving_cost_model(profile)
    decode = profile.serving.decode
    cost = model.decode(decode["batch_size"], decode["context_tokens"])
    np.testing.assert_allclose(cost.time_s, decode["time_s_mean"], rtol=1e-5)
    np.testing.assert_allclose(cost.gpu_energy_j, decode["gpu_energy_j_mean"], rtol=1e-5)
    trials = read_trials(tmp_path, SERVING_TRIALS_FILE)
    warm = trials[(trials["table"] == "prefill") & ~trials["warmup"]]
    means = warm.groupby(["batch_size", "total_tokens"])["time_s"].mean().to_numpy()
    np.testing.assert_allclose(profile.serving.prefill["time_s_mean"], means, rtol=1e-5)


@pytest.mark.parametrize("estimated", [False, True])
def test_an_estimated_meters_tables_say_their_energy_is_modelled(tmp_path: Path, estimated: bool) -> None:
    """`pass energy: measured` beside an estimated meter misled: the summary's and the plot's MODELLED marks
    follow `energy_source`, so an estimate must not be called measured."""
    run_serving_protocol(FakePassRunner(), FakeMeter(), tmp_path, CONFIG, progress=False)
    write_serving_profile(tmp_path, serving_context(estimated=estimated, meter="estimated"))
    serving = load_profile_dir(tmp_path).serving
    assert serving is not None and serving.energy_modelled == estimated
    if estimated:
        assert serving.energy_source.startswith("modelled by the estimated meter, not metered: ")
    else:
        assert serving.energy_source == "measured"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--serving", "--batch-size", "4"], "--batch-size: does not apply to --serving"),
        (["--serving", "--no-kv-cache"], "--no-kv-cache: does not apply to --serving"),
        (["--serving", "--input-tokens", "8,16"], "--input-tokens: does not apply to --serving"),
        (["--batch-sizes", "1,2"], "--batch-sizes: only applies with --serving"),
        (["--serving", "--batch-sizes", "1,x"], "--batch-sizes: expected comma-separated"),
        (["--serving", "--ci-relative", "2"], "--ci-relative: must be between 0 and 1"),
        (["--serving", "--idle-window-s", "-1"], "--idle-window-s: must be >= 0"),
    ],
)
def test_bad_serving_options_are_one_line_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        calibrate,
        [
            "--out",
            str(tmp_path / "x"),
            "--device",
            "cpu",
            "--arch",
            "tiny-llama",
            "--meter",
            "estimated",
            *args,
        ],
        standalone_mode=False,
    )
    assert isinstance(result.exception, HybridsimError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_a_serving_calibration_of_a_tiny_llama_on_the_cpu_end_to_end(tmp_path: Path) -> None:
    """The real model and the estimated meter: the profile loads, prices, and `profiles show` displays it."""
    out = tmp_path / "tiny-serving"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: a busy shared CPU times less erratically
    command = [
        sys.executable,
        "-m",
        "hybridsim",
        "calibrate",
        "--serving",
        "--quick",
        "--arch",
        "tiny-llama",
        "--meter",
        "estimated",
        "--no-progress",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "8 settings measured, 0 out of memory" in done.stdout
    profile = load_profile_dir(out)
    serving = profile.serving
    assert serving is not None and profile.points.empty and profile.metadata.estimated
    assert len(serving.prefill) == 4 and len(serving.decode) == 4
    assert (serving.prefill["n_trials"] >= 2).all() and (serving.decode["time_s_mean"] > 0).all()
    assert (
        serving.kv_capacity_derivation["kv_bytes_per_token"] == 2 * 2 * 4 * 16 * 2
    )  # layers, heads, dim, bf16
    assert serving.idle_power_w is not None and "idle window" in serving.idle_power_source
    model = build_serving_cost_model(profile)
    np.testing.assert_allclose(
        model.prefill(serving.prefill["batch_size"], serving.prefill["prompt_tokens"]).time_s,
        serving.prefill["time_s_mean"],
        rtol=1e-5,
    )
    shown = subprocess.run(
        [sys.executable, "-m", "hybridsim", "profiles", "show", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "prefill passes:" in shown.stdout
        and "decode iterations:" in shown.stdout
        and "ESTIMATED" in shown.stdout
        and "pass energy:  modelled by the estimated meter" in shown.stdout
    )
    resumed = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "0 trials" in resumed.stdout


def test_a_scheduler_stopping_a_serving_sweep_gets_one_line_and_143(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (a batch scheduler's time limit) mid-sweep: the profile of what finished is written, one line
    says where the trials are, and the exit status is SIGTERM's."""
    pytest.importorskip("torch")

    def stopped(*args: object, **kwargs: object) -> None:
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr("hybridsim.calibration.serving_protocol.run_serving_protocol", stopped)
    out = tmp_path / "cal"
    arguments = ["--serving", "--quick", "--out", str(out), "--device", "cpu", "--arch", "tiny-llama"]
    result = CliRunner().invoke(calibrate, [*arguments, "--meter", "estimated"], standalone_mode=False)
    assert isinstance(result.exception, Interrupted), result.output
    assert result.exception.exit_code == 143
    message = str(result.exception)
    assert "\n" not in message and message.startswith("terminated: every finished trial is in")
    assert message.endswith("continue with --resume") and (out / "calibration.json").is_file()
