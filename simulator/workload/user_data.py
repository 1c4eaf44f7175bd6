"""Your own requests: a JSONL file of prompts, counted with a SentencePiece tokenizer file.

Counting follows the paper's code (and the built-in tables): Hugging Face `tokenizer.encode(text)`
adds a BOS token and no EOS, and each field is encoded on its own, so

    input_tokens  = (len(encode(instruction)) + 1) + (len(encode(input)) + 1)
    output_tokens =  len(encode(output)) + 1

for Alpaca-style records (`instruction`, optional `input`, `output`), or `prompt` / `completion` with one
BOS each. An empty or missing `input` therefore still adds its BOS token, as `encode("")` does in HF.
No prompt template is added. CSV tables of counts are read by `datasets.read_histogram_csv`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from hybridsim.core.errors import HybridsimError

from .datasets import JointHistogram


class Tokenizer(Protocol):
    """What counting needs of a tokenizer: SentencePiece's batch `encode` (texts -> token ids per text)."""

    def encode(self, texts: list[str]) -> list[list[int]]: ...


def load_tokenizer(path: Path) -> Tokenizer:
    """A SentencePiece processor from a `.model` file (the `tokenize` extra installs sentencepiece)."""
    path = Path(path)
    if not path.is_file():
        raise HybridsimError(f"{path}: tokenizer file not found")
    try:
        import sentencepiece
    except ImportError:
        raise HybridsimError(
            "counting JSONL prompts needs sentencepiece: pip install 'hybridsim[tokenize]'"
        ) from None
    try:
        return sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as error:
        raise HybridsimError(f"{path}: not a SentencePiece model: {str(error).splitlines()[0]}") from None


def read_jsonl_fields(path: Path) -> tuple[list[list[str]], list[str]]:
    """Per record: the input fields (each encoded separately) and the output text."""
    path = Path(path)
    if not path.is_file():
        raise HybridsimError(f"{path}: workload JSONL not found")
    inputs: list[list[str]] = []
    outputs: list[str] = []
    try:
        with path.open(encoding="utf-8") as handle:  # streamed: a prompt file may be large
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    fields, output = _jsonl_record(line, f"{path}:{number}")
                    inputs.append(fields)
                    outputs.append(output)
    except UnicodeDecodeError:
        raise HybridsimError(f"{path}: not a UTF-8 text file (a workload JSONL is text)") from None
    return inputs, outputs


def _jsonl_record(line: str, where: str) -> tuple[list[str], str]:
    """(input fields, output text) of one JSONL line, in the Alpaca or prompt/completion layout."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise HybridsimError(f"{where}: malformed JSON: {error.msg}") from None
    if not isinstance(record, dict):
        raise HybridsimError(f"{where}: each line must be a JSON object")
    if "instruction" in record:
        fields, output_key = [record["instruction"], record.get("input", "")], "output"
    elif "prompt" in record:
        fields, output_key = [record["prompt"]], "completion"
    else:
        raise HybridsimError(
            f"{where}: need 'instruction' (+ 'input', 'output') or 'prompt' (+ 'completion')"
        )
    if output_key not in record:
        raise HybridsimError(f"{where}: missing '{output_key}' (output lengths come from it)")
    texts = [*fields, record[output_key]]
    if not all(isinstance(text, str) for text in texts):
        raise HybridsimError(f"{where}: prompt and output fields must be strings")
    return fields, record[output_key]


def count_tokens(texts: list[str], tokenizer: Tokenizer) -> np.ndarray:
    """HF-style counts: pieces plus one BOS per text."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return np.fromiter((len(ids) + 1 for ids in tokenizer.encode(texts)), dtype=np.int64, count=len(texts))


def read_jsonl_workload(path: Path, tokenizer_path: Path, name: str) -> JointHistogram:
    """Token lengths of every record in a JSONL file of prompts, as a joint histogram."""
    inputs, outputs = read_jsonl_fields(path)
    tokenizer = load_tokenizer(tokenizer_path)
    widths = np.array([len(fields) for fields in inputs], dtype=np.int64)
    field_counts = count_tokens([text for fields in inputs for text in fields], tokenizer)
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]) if widths.size else widths
    input_tokens = np.add.reduceat(field_counts, starts) if widths.size else widths
    output_tokens = count_tokens(outputs, tokenizer)
    provenance = (
        f"JSONL {path} ({len(outputs)} records), counted with {tokenizer_path} "
        "as HF encode does (one BOS per field, no template)"
    )
    return JointHistogram.from_records(input_tokens, output_tokens, name, provenance)
