"""Every `calibrate` option reaches what the run is given, and one that the run would not read is refused.

The meter and the run itself are stubbed (no model is built, nothing is measured): each option is given on
top of a baseline command line, and what `run_calibration` (or `run_serving` with `--serving`) and the meter
choice receive must differ from the baseline exactly where that option says. CALIBRATE_EFFECTS is the table
tests/cli/test_every_option_is_wired.py reads: a new option without a row here fails there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hybridsim.calibration import cli as calibrate_cli
from hybridsim.calibration import cli_meter, cli_serving_run, runner
from hybridsim.calibration.cli import calibrate

from hybridsim.core.errors import HybridsimError

Captured = dict[str, Any]


class StubMeter:
    """What `choose_meter` returns here: a meter that is never read."""

    estimated = True
    scope = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def __enter__(self) -> StubMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True


CALIBRATE_EFFECTS: dict[str, tuple[list[str], Callable[[Captured], bool]]] = {
    "--out": (["--out", "elsewhere"], lambda c: c["out_dir"] == Path("elsewhere")),
    "--arch": (["--arch", "tiny-mistral"], lambda c: c["runner"].arch == "tiny-mistral"),
    "--model": (["--model", "MODEL_DIR"], lambda c: str(c["runner"].model).endswith("model-dir")),
    "--allow-download": (
        ["--model", "MODEL_DIR", "--allow-download"],
        lambda c: c["runner"].allow_download is True,
    ),
    "--dtype": (["--dtype", "float32"], lambda c: c["runner"].dtype == "float32"),
    "--device": (["--device", "mps"], lambda c: c["runner"].device == "mps"),
    "--batch-size": (["--batch-size", "4"], lambda c: c["runner"].batch_size == 4),
    "--kv-cache/--no-kv-cache": (["--no-kv-cache"], lambda c: c["runner"].kv_cache is False),
    "--meter": (["--meter", "rapl"], lambda c: c["meter"]["name"] == "rapl"),
    "--tdp-w": (["--tdp-w", "65"], lambda c: c["meter"]["tdp_w"] == 65),
    "--accelerator-w": (["--accelerator-w", "30"], lambda c: c["meter"]["accelerator_w"] == 30),
    "--idle-s": (
        ["--meter", "rapl", "--idle-s", "3"],
        lambda c: c["meter"]["rapl_idle_s"] == 3 and c["idle_s"] == 3,
    ),
    "--uprof-csv": (
        ["--meter", "uprof", "--uprof-csv", "t.csv"],
        lambda c: c["meter"]["uprof_csv"] == Path("t.csv"),
    ),
    "--system": (["--system", "bench-7"], lambda c: c["system"] == "bench-7"),
    "--input-tokens": (["--input-tokens", "8,24"], lambda c: c["protocol"].input_tokens == (8, 24)),
    "--output-tokens": (["--output-tokens", "8,24"], lambda c: c["protocol"].output_tokens == (8, 24)),
    "--max-input": (["--max-input", "64"], lambda c: max(c["protocol"].input_tokens) <= 64),
    "--max-output": (["--max-output", "64"], lambda c: max(c["protocol"].output_tokens) <= 64),
    "--fixed-output": (["--fixed-output", "7"], lambda c: c["protocol"].fixed_output == 7),
    "--fixed-input": (["--fixed-input", "9"], lambda c: c["protocol"].fixed_input == 9),
    "--grid": (["--grid"], lambda c: c["protocol"].grid is True),
    "--ci-halfwidth": (["--ci-halfwidth", "0.25"], lambda c: c["protocol"].ci_halfwidth_s == 0.25),
    "--min-trials": (["--min-trials", "5"], lambda c: c["protocol"].min_trials == 5),
    "--max-trials": (["--max-trials", "6"], lambda c: c["protocol"].max_trials == 6),
    "--warmup": (["--warmup", "0"], lambda c: c["protocol"].warmup == 0),
    "--seed": (["--seed", "5"], lambda c: c["protocol"].seed == 5 and c["runner"].seed == 5),
    "--time-budget-s": (["--time-budget-s", "100"], lambda c: c["protocol"].time_budget_s == 100),
    "--resume": (["--resume"], lambda c: c["resume"] is True),
    "--overwrite": (["--overwrite"], lambda c: c["overwrite"] is True),
    "--quick": (
        ["--quick"],
        lambda c: c["protocol"].input_tokens == (8, 16) and c["protocol"].max_trials == 3,
    ),
    "--no-progress": (["--no-progress"], lambda c: c["progress"] is False),
    "--serving": (["--serving"], lambda c: c["serving"] is not None),
    "--batch-sizes": (["--serving", "--batch-sizes", "2,3"], lambda c: c["serving"].batch_sizes == (2, 3)),
    "--prompt-lengths": (
        ["--serving", "--prompt-lengths", "32"],
        lambda c: c["serving"].prompt_lengths == (32,),
    ),
    "--context-lengths": (
        ["--serving", "--context-lengths", "32"],
        lambda c: c["serving"].context_lengths == (32,),
    ),
    "--ci-relative": (["--serving", "--ci-relative", "0.2"], lambda c: c["serving"].ci_relative == 0.2),
    "--min-window-s": (["--serving", "--min-window-s", "0.1"], lambda c: c["serving"].min_window_s == 0.1),
    "--idle-window-s": (["--serving", "--idle-window-s", "0"], lambda c: c["idle_window_s"] == 0),
}
"""Option -> (arguments added to the baseline, what must then hold of the captured run)."""
BASELINE = ["--arch", "tiny-llama", "--meter", "estimated", "--device", "cpu"]


@pytest.fixture
def run_calibrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Captured]:
    """`calibrate BASELINE ARGS` with the meter and the run stubbed; what they were given."""
    captured: Captured = {}

    def choose(name: str, **options: Any) -> StubMeter:
        captured["meter"] = {"name": name, **options}
        captured["stub"] = StubMeter(captured.get("meter_name_seen", name))
        return captured["stub"]

    def request_run(out_dir: Path, runner_config: Any, protocol: Any, *args: Any, **kwargs: Any) -> None:
        captured.update(out_dir=out_dir, runner=runner_config, protocol=protocol, serving=None, **kwargs)

    def serving_run(out_dir: Path, runner_config: Any, config: Any, *args: Any, **kwargs: Any) -> None:
        captured.update(kwargs["params"])
        captured.update(
            out_dir=out_dir, runner=runner_config, serving=config, idle_window_s=kwargs["idle_window_s"]
        )

    monkeypatch.setattr(cli_meter, "choose_meter", choose)
    monkeypatch.setattr(calibrate_cli, "run_calibration", request_run)
    monkeypatch.setattr(cli_serving_run, "run_serving", serving_run)
    monkeypatch.setattr(calibrate_cli, "require_calibrate_extra", lambda: None)
    monkeypatch.setattr(runner, "check_device", lambda device: None)
    (tmp_path / "model-dir").mkdir()

    def invoke(*args: str, meter_name: str | None = None) -> Captured:
        captured.clear()
        if meter_name is not None:
            captured["meter_name_seen"] = meter_name
        words = [str(tmp_path / "model-dir") if word == "MODEL_DIR" else word for word in args]
        # --model replaces the baseline's --arch
        words = [*BASELINE[2:], *words] if "--model" in words else [*BASELINE, *words]
        if "--out" not in words:
            words = ["--out", str(tmp_path / "out"), *words]
        with monkeypatch.context() as inside:
            inside.chdir(tmp_path)
            result = CliRunner().invoke(calibrate, words, standalone_mode=False)
        if result.exception is not None:
            raise result.exception
        return dict(captured)

    return invoke


@pytest.mark.parametrize("option", list(CALIBRATE_EFFECTS))
def test_each_option_changes_what_the_run_is_given(
    option: str, run_calibrate: Callable[..., Captured]
) -> None:
    args, holds = CALIBRATE_EFFECTS[option]
    serving = "--serving" in args
    baseline = run_calibrate(*(["--serving"] if serving and option != "--serving" else []))
    assert not holds(baseline) if option != "--serving" else baseline["serving"] is None
    assert holds(run_calibrate(*args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # typed out at their defaults, request-level options would still be ignored by a serving sweep
        (["--serving", "--batch-size", "1"], "--batch-size: does not apply to --serving"),
        (["--serving", "--ci-halfwidth", "0.5"], "--ci-halfwidth: does not apply to --serving"),
        (["--serving", "--fixed-output", "32"], "--fixed-output: does not apply to --serving"),
        # a serving sweep's idle power is metered over --idle-window-s; --idle-s is RAPL's baseline only
        (["--serving", "--meter", "nvidia", "--idle-s", "5"], "--idle-s: with --serving only RAPL reads it"),
        (["--serving", "--meter", "powermetrics", "--idle-s", "5"], "not --meter powermetrics"),
        # --arch builds a random model: there is nothing to download
        (["--allow-download"], "--allow-download: only --model fetches"),
        (["--serving", "--allow-download"], "--allow-download: only --model fetches"),
    ],
)
def test_an_option_the_run_would_ignore_is_refused(
    args: list[str], message: str, run_calibrate: Callable[..., Captured], tmp_path: Path
) -> None:
    with pytest.raises(HybridsimError, match=message) as refused:
        run_calibrate(*args)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_serving_idle_s_with_an_auto_meter_that_found_no_rapl_is_refused(
    run_calibrate: Callable[..., Captured], tmp_path: Path
) -> None:
    with pytest.raises(HybridsimError, match=r"--idle-s: .* not --meter auto \(it chose nvidia\)"):
        run_calibrate("--serving", "--meter", "auto", "--idle-s", "5", meter_name="nvidia")
    assert not (tmp_path / "out").exists()
    captured = run_calibrate("--serving", "--meter", "auto", "--idle-s", "5", meter_name="rapl")
    assert captured["meter"]["rapl_idle_s"] == 5  # RAPL inside auto subtracts that baseline


def test_an_explicit_kv_cache_is_what_a_serving_sweep_does(run_calibrate: Callable[..., Captured]) -> None:
    assert run_calibrate("--serving", "--kv-cache")["runner"].kv_cache is True
