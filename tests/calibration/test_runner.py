"""The real runner (torch + transformers on the CPU, tiny random models): exact token counts, no EOS stop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from calibration_fakes import FakeMeter  # noqa: E402
from hybridsim.calibration.archs import list_archs, load_arch  # noqa: E402
from hybridsim.calibration.runner import (  # noqa: E402
    BudgetExhausted,
    OutOfMemory,
    RunnerConfig,
    TransformersRunner,
    check_device,
    is_out_of_memory,
)

from hybridsim.core.errors import HybridsimError  # noqa: E402


@pytest.fixture(scope="module")
def runner() -> TransformersRunner:
    return TransformersRunner(RunnerConfig(arch="tiny-llama", dtype="float32", device="cpu", batch_size=2))


@pytest.mark.parametrize(("m", "n"), [(1, 1), (5, 16), (16, 9)])
def test_runner_feeds_m_tokens_and_generates_exactly_n(runner: TransformersRunner, m: int, n: int) -> None:
    meter = FakeMeter()
    result = runner.run_trial(m, n, meter)
    assert (result.input_tokens, result.output_tokens, result.batch_size) == (m, n, 2)
    assert meter.windows == 1 and not meter.open
    assert result.runtime_s > 0 and result.peak_memory_mb and result.peak_memory_mb > 0


def test_end_of_sequence_does_not_stop_generation(runner: TransformersRunner) -> None:
    """Force the model to prefer EOS at every step: it must still produce n tokens."""
    eos = runner.model.config.eos_token_id

    def always_eos(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[..., eos] = 1e4
        return output

    handle = runner.model.lm_head.register_forward_hook(always_eos)
    try:
        assert runner.run_trial(4, 12, FakeMeter()).output_tokens == 12
    finally:
        handle.remove()


def test_without_kv_cache_the_counts_are_the_same() -> None:
    runner = TransformersRunner(RunnerConfig(arch="tiny-mistral", dtype="bfloat16", kv_cache=False))
    result = runner.run_trial(16, 8, FakeMeter())
    assert (result.input_tokens, result.output_tokens) == (16, 8)
    assert runner.describe()["kv_cache"] is False


def test_prompts_are_seeded_and_avoid_special_tokens(runner: TransformersRunner) -> None:
    ids = runner.input_ids(64)
    assert torch.equal(ids, runner.input_ids(64))
    assert not torch.isin(ids, torch.tensor(sorted(runner.special_ids))).any()
    assert int(ids.max()) < runner.model.config.vocab_size


def test_out_of_memory_becomes_its_own_exception_and_closes_the_window(
    runner: TransformersRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner.model, "generate", explode)
    meter = FakeMeter()
    with pytest.raises(OutOfMemory, match="Tried to allocate"):
        runner.run_trial(8, 8, meter)
    assert not meter.open


def test_a_deadline_abandons_the_trial_between_decoding_steps(runner: TransformersRunner) -> None:
    def slow_step(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        time.sleep(0.01)

    handle = runner.model.lm_head.register_forward_hook(slow_step)
    meter = FakeMeter()
    try:
        runner.deadline = time.monotonic() + 0.05
        started = time.monotonic()
        with pytest.raises(BudgetExhausted, match="during a trial"):
            runner.run_trial(4, 500, meter)  # 500 steps of >= 10 ms would take >= 5 s
        assert time.monotonic() - started < 2.0 and not meter.open
        with pytest.raises(BudgetExhausted, match="before the trial started"):
            runner.run_trial(4, 4, meter)
    finally:
        handle.remove()
        runner.deadline = None


def test_out_of_memory_detection() -> None:
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 10 GB)"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("expected scalar type Float"))


@pytest.mark.parametrize(
    ("arch", "parameters"),
    [("llama2-7b", 6_738_415_616), ("mistral-7b", 7_241_732_096), ("falcon-7b", 6_921_720_704)],
)
def test_bundled_7b_architectures_have_the_published_parameter_counts(arch: str, parameters: int) -> None:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = AutoModelForCausalLM.from_config(load_arch(arch).build_config())
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_every_bundled_arch_loads_and_unknown_names_are_user_errors() -> None:
    assert {"llama2-7b", "mistral-7b", "falcon-7b", "tiny-llama"} <= set(list_archs())
    for name in list_archs():
        assert load_arch(name).build_config().model_type == load_arch(name).model_type
    with pytest.raises(HybridsimError, match="unknown architecture 'gpt-9'.*llama2-7b"):
        load_arch("gpt-9")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arch": None}, "exactly one of"),
        ({"model": "x"}, "exactly one of"),
        ({"dtype": "int8"}, "--dtype"),
        ({"device": "tpu"}, "--device"),
        ({"device": "cuda:x"}, "--device"),
        ({"batch_size": 0}, "--batch-size"),
    ],
)
def test_bad_runner_options_are_user_errors(changes: dict, message: str) -> None:
    values = {"arch": "tiny-llama", **changes}
    with pytest.raises(HybridsimError, match=message):
        RunnerConfig(**values).validate()


def test_a_missing_or_empty_local_model_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(HybridsimError, match="--model .*nothing-here: not a local model directory"):
        RunnerConfig(model=str(tmp_path / "nothing-here"), dtype="float32").validate()  # before torch loads
    with pytest.raises(HybridsimError, match="--model .*cannot load"):
        TransformersRunner(RunnerConfig(model=str(tmp_path), dtype="float32"))


def test_cuda_on_a_machine_without_it_is_a_one_line_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(HybridsimError, match="--device cuda:1: torch .* sees no CUDA device"):
        check_device("cuda:1")
