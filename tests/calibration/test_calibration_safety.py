"""A calibration never mixes incompatible trials, never writes into a user's folder, and keeps every
finished trial through a torn write."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path
from typing import Any

import pytest
from calibration_fakes import fake_context
from click.testing import CliRunner
from hybridsim.calibration.cli import calibrate
from hybridsim.calibration.profile_writer import check_resumable, extended_run, save_context

from hybridsim.core.errors import HybridsimError, Interrupted
from hybridsim.core.profile_io import read_trials
from hybridsim.core.stop_signals import Terminated

RUN: dict[str, Any] = {
    "model": None,
    "arch": "tiny-llama",
    "dtype": "bfloat16",
    "device": "cpu",
    "batch_size": 1,
    "kv_cache": True,
    "meter": "estimated",
    "seed": 0,
    "protocol": {
        "input_tokens": [8, 16],
        "output_tokens": [8],
        "fixed_input": 16,
        "fixed_output": 16,
        "grid": False,
    },
}


def files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def invoke(out: Path, *extra: str) -> Any:
    args = ["--arch", "tiny-llama", "--device", "cpu", "--meter", "estimated", "--quick", "--no-progress"]
    return CliRunner().invoke(calibrate, [*args, "--out", str(out), *extra], standalone_mode=False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"seed": 5}, "seed 0 -> 5"),
        ({"kv_cache": False}, "kv_cache True -> False"),
        ({"batch_size": 4}, "batch_size 1 -> 4"),
        ({"meter": "rapl"}, "meter 'estimated' -> 'rapl'"),
        ({"protocol": {**RUN["protocol"], "fixed_input": 32}}, "fixed_input 16 -> 32"),
    ],
)
def test_resume_with_incompatible_settings_is_refused(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    previous = fake_context(run=RUN)
    with pytest.raises(HybridsimError, match="--resume with different settings") as caught:
        check_resumable(previous, {**RUN, **change}, tmp_path)
    assert named in str(caught.value)


def test_resume_may_extend_the_sweeps_and_records_the_union() -> None:
    previous = fake_context(run=RUN)
    wider = {**RUN, "protocol": {**RUN["protocol"], "input_tokens": [32], "grid": True, "min_trials": 5}}
    check_resumable(previous, wider, Path("x"))  # compatible: no error
    record = extended_run(previous, wider)
    assert record["protocol"]["input_tokens"] == [8, 16, 32] and record["protocol"]["grid"] is True


def test_resume_with_another_seed_changes_no_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "cal"
    save_context(out, fake_context(run={**RUN, "seed": 0}))
    (out / "trials.csv").write_text("input_tokens,output_tokens\n8,8\n")
    before = files(out)
    result = invoke(out, "--resume", "--seed", "5")
    assert isinstance(result.exception, HybridsimError), result.output
    assert "seed 0 -> 5" in str(result.exception) and "\n" not in str(result.exception)
    assert files(out) == before


def test_calibrate_into_a_folder_of_user_files_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "papers"
    out.mkdir()
    (out / "paper.tex").write_text("mine")
    before = files(out)
    for extra in ((), ("--resume",)):
        result = invoke(out, *extra)
        assert isinstance(result.exception, HybridsimError), result.output
        assert "did not write" in str(result.exception)
        assert files(out) == before


@pytest.mark.parametrize("out", [".", "/", "/proc/cal"])
def test_calibrate_refuses_places_no_output_may_take(tmp_path: Path, out: str) -> None:
    result = invoke(Path(out))
    assert isinstance(result.exception, HybridsimError), result.output
    assert str(result.exception).startswith(f"--out {out}:")


def test_a_torn_last_trial_is_dropped_when_the_trials_are_read(tmp_path: Path) -> None:
    whole = "input_tokens,output_tokens,runtime_s\n8,8,0.5\n16,8,0.7\n"
    (tmp_path / "trials.csv").write_text(whole + "32,8,0.")  # killed mid-line
    with pytest.warns(UserWarning, match="torn last line"):
        trials = read_trials(tmp_path)
    assert trials["input_tokens"].tolist() == [8, 16]
    assert (tmp_path / "trials.csv").read_text() == whole


@pytest.mark.parametrize(
    ("stop", "word", "status"),
    [
        (KeyboardInterrupt(), "interrupted", 130),
        (Terminated(signal.SIGTERM), "terminated", 143),  # a batch scheduler's time limit
        (Terminated(signal.SIGHUP), "hung up", 129),
    ],
)
def test_a_stop_during_the_trials_keeps_them_in_one_line_with_the_signals_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException, word: str, status: int
) -> None:
    pytest.importorskip("torch")

    class QuickRunner:  # no model: the interruption is what is tested
        deadline = None

        def __init__(self, config: object) -> None:
            pass

        def describe(self) -> dict[str, Any]:
            return {"model": "tiny", "parameters": 1e6, "load_time_s": 0.0}

        def warm_up(self) -> float:
            return 0.0

        def close(self) -> None:
            pass

    def interrupted(*args: object, **kwargs: object) -> None:
        raise stop

    monkeypatch.setattr("hybridsim.calibration.runner.TransformersRunner", QuickRunner)
    monkeypatch.setattr("hybridsim.calibration.protocol.run_protocol", interrupted)
    result = invoke(tmp_path / "cal")
    assert isinstance(result.exception, Interrupted), result.output
    assert result.exception.exit_code == status
    message = str(result.exception)
    assert "\n" not in message and message.startswith(f"{word}: every finished trial is in")
    assert (tmp_path / "cal" / "calibration.json").is_file()  # the run's record stays for --resume
