"""The Azure LLM inference traces (2023) in hybridsim's trace layout, with their attribution.

Microsoft published an hour of requests to two production LLM services (a conversation service and a
coding service): when each arrived, how long its prompt was, how many tokens were generated. The Splitwise
and Vidur simulators replay them; so can hybridsim. This module rewrites the copy processed for Splitwise
(`arrived_at, num_prefill_tokens, num_decode_tokens`, seconds since the first request) as
`arrival_s, input_tokens, output_tokens` (`arrivals.read_trace`), times rounded to the microsecond, and
writes the attribution the licence asks for beside it:

    python -m hybridsim.simulator.workload.azure_trace ../shared/data/azure-llm-2023 scenarios/traces
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hybridsim.core.atomic import write_text_atomic
from hybridsim.core.readers import read_csv_file

TRACES = {"conv": "azure-conv-2023.csv", "code": "azure-code-2023.csv"}
ATTRIBUTION = """# Azure LLM inference traces (2023), as hybridsim traces

`azure-conv-2023.csv` (conversation service) and `azure-code-2023.csv` (coding service): one row per request,
`arrival_s` (seconds since the first request, rounded to the microsecond), `input_tokens` (prompt tokens),
`output_tokens` (generated tokens). Derived by `python -m hybridsim.simulator.workload.azure_trace` from the
copy processed for Splitwise and shipped in `microsoft/vidur` at commit
`7d47513363ec447a741ac5e47241580b47724fbf` (columns renamed; nothing dropped or resampled).

Source and licence: Microsoft, *Azure LLM inference trace 2023* (AzurePublicDataset,
`AzureLLMInferenceTrace_conv.csv`, `AzureLLMInferenceTrace_code.csv`), Creative Commons Attribution 4.0
International. Processed by the Splitwise authors (Patel et al., "Splitwise: Efficient generative LLM
inference using phase splitting", ISCA 2024) and redistributed in `microsoft/vidur` under the MIT licence.
"""


def derive(source_dir: Path, out_dir: Path) -> list[Path]:
    """Write both traces and PROVENANCE.md into `out_dir`; return the files written."""
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, target in TRACES.items():
        frame = read_csv_file(source_dir / f"{name}.csv")
        derived = pd.DataFrame(
            {
                "arrival_s": np.round(frame["arrived_at"].to_numpy(dtype=np.float64), 6),
                "input_tokens": frame["num_prefill_tokens"].to_numpy(dtype=np.int64),
                "output_tokens": frame["num_decode_tokens"].to_numpy(dtype=np.int64),
            }
        )
        path = out_dir / target
        write_text_atomic(path, derived.to_csv(index=False, lineterminator="\n"))
        written.append(path)
    write_text_atomic(out_dir / "PROVENANCE.md", ATTRIBUTION)
    return [*written, out_dir / "PROVENANCE.md"]


if __name__ == "__main__":  # pragma: no cover - a maintainer's one-off
    for path in derive(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
