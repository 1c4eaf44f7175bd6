"""User workloads: CSV tables of counts and JSONL prompts counted the way the paper counted them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hybridsim.simulator.workload import WorkloadSpec, build_workload

from hybridsim.cli import cli
from hybridsim.core.errors import HybridsimError

TOKENIZER = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "tokenizers" / "llama2" / "tokenizer.model"
)


@pytest.fixture
def tokenizer() -> Path:
    if not TOKENIZER.is_file():
        pytest.skip("Llama-2 tokenizer (../shared/data/tokenizers/llama2) not present")
    pytest.importorskip("sentencepiece")
    return TOKENIZER


def test_csv_of_records_and_csv_histogram_give_the_same_workload(tmp_path: Path) -> None:
    (tmp_path / "records.csv").write_text("input_tokens,output_tokens,note\n10,20,a\n10,20,b\n30,5,c\n")
    (tmp_path / "hist.csv").write_text("input_tokens,output_tokens,count\n10,20,2\n30,5,1\n99,99,0\n")
    records = build_workload(WorkloadSpec(csv="records.csv"), seed=3, base_dir=tmp_path)
    hist = build_workload(WorkloadSpec(csv=tmp_path / "hist.csv"), seed=3)
    assert np.array_equal(records.input_tokens, hist.input_tokens)
    assert np.array_equal(records.output_tokens, hist.output_tokens)
    assert sorted(zip(records.input_tokens.tolist(), records.output_tokens.tolist(), strict=True)) == [
        (10, 20),
        (10, 20),
        (30, 5),
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "input_tokens,output_tokens\n10,2.5\n",
            r"^workload\.csv: .*w\.csv: row 2: output_tokens must be an integer",
        ),
        ("input_tokens,output_tokens\n10,20\n0,4\n", "row 3: input_tokens must be an integer >= 1, got 0$"),
        ("input_tokens\n10\n", r"^workload\.csv: .*missing column"),
        ("input_tokens,output_tokens\n", "no requests"),
    ],
)
def test_bad_csv_names_file_and_row(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "w.csv").write_text(content)
    with pytest.raises(HybridsimError, match=message):
        build_workload(WorkloadSpec(csv=tmp_path / "w.csv"), seed=0)


def test_missing_csv_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(HybridsimError, match="^workload.csv: .*not found"):
        build_workload(WorkloadSpec(csv=tmp_path / "absent.csv"), seed=0)


def test_jsonl_counts_one_bos_per_field(tmp_path: Path, tokenizer: Path) -> None:
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
    records = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well."},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        {"prompt": "Hello there", "completion": "General Kenobi!"},
    ]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    got = build_workload(WorkloadSpec(jsonl=path, tokenizer=tokenizer), seed=0)

    def n(text: str) -> int:
        return len(sp.encode(text)) + 1

    expected = sorted(
        [
            (n(records[0]["instruction"]) + 1, n("Eat well.")),  # empty input still adds its BOS
            (n(records[1]["instruction"]) + n("Good morning"), n("Bonjour")),
            (n("Hello there"), n("General Kenobi!")),
        ]
    )
    assert sorted(zip(got.input_tokens.tolist(), got.output_tokens.tolist(), strict=True)) == expected


def test_jsonl_reproduces_the_shared_gpt4_sample_counts(shared_dir: Path, tokenizer: Path) -> None:
    """The 1,000 GPT-4 records counted here agree with the data README's (HF transformers 4.x) counts."""
    alpaca = shared_dir / "data" / "alpaca"
    got = build_workload(WorkloadSpec(jsonl=alpaca / "sample.jsonl", tokenizer=tokenizer), seed=0)
    table = pd.read_csv(alpaca / "token-lengths.csv")
    assert sorted(zip(got.input_tokens.tolist(), got.output_tokens.tolist(), strict=True)) == sorted(
        zip(table["input_tokens"].tolist(), table["output_tokens"].tolist(), strict=True)
    )


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"instruction": "x"', "prompts.jsonl:1: malformed JSON"),
        ('{"instruction": "x", "input": ""}', "missing 'output'"),
        ('{"text": "x"}', "need 'instruction'"),
        ('["x"]', "JSON object"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path: Path, tokenizer: Path, line: str, message: str) -> None:
    (tmp_path / "prompts.jsonl").write_text(line + "\n")
    with pytest.raises(HybridsimError, match=message):
        build_workload(WorkloadSpec(jsonl=tmp_path / "prompts.jsonl", tokenizer=tokenizer), seed=0)


def test_tokenizer_that_is_not_a_sentencepiece_model(tmp_path: Path) -> None:
    pytest.importorskip("sentencepiece")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (tmp_path / "bad.model").write_text("not a model")
    with pytest.raises(HybridsimError, match="not a SentencePiece model"):
        build_workload(WorkloadSpec(jsonl=tmp_path / "p.jsonl", tokenizer=tmp_path / "bad.model"), seed=0)


def test_workload_show_of_an_empty_csv_prints_nothing_but_the_error(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("input_tokens,output_tokens\n")
    result = CliRunner().invoke(cli, ["workload", "show", str(tmp_path / "empty.csv")])
    assert isinstance(result.exception, HybridsimError) and "empty" in str(result.exception)
    assert result.output == ""
