"""Speed by construction must not change the answer: a node that prices the decode iterations between two
changes of its batch as one run answers every request as a node that runs them one iteration at a time."""

from __future__ import annotations

import numpy as np
import pytest
from hybridsim.simulator.cluster import cluster as cluster_module
from hybridsim.simulator.cluster.continuous import ContinuousPool
from hybridsim.simulator.cluster.continuous_chunked import ChunkedPrefillPool
from test_continuous_physics import small_kv_run


def _one_iteration_at_a_time(base: type[ContinuousPool]) -> type[ContinuousPool]:
    class OneAtATime(base):  # type: ignore[misc, valid-type]
        def _run_length(self, steps: int) -> int:
            return 1

    return OneAtATime


@pytest.mark.parametrize("tabulate", [False, True], ids=["priced-exactly", "read-off-the-grid"])
@pytest.mark.parametrize("chunked", [False, True], ids=["prefill-first", "chunked"])
def test_runs_of_iterations_answer_as_single_iterations(chunked: bool, tabulate: bool, monkeypatch) -> None:
    """With preemptions, newcomers cutting runs short, and a request-level pool beside the batching one."""
    runs, _ = small_kv_run(chunked=chunked, tabulate=tabulate)
    monkeypatch.setattr(cluster_module, "ContinuousPool", _one_iteration_at_a_time(ContinuousPool))
    monkeypatch.setattr(cluster_module, "ChunkedPrefillPool", _one_iteration_at_a_time(ChunkedPrefillPool))
    single, _ = small_kv_run(chunked=chunked, tabulate=tabulate)
    decodes = ~runs.passes["gpu"]["prefill"]
    single_decodes = ~single.passes["gpu"]["prefill"]
    assert decodes.sum() * 5 < single_decodes.sum(), "the runs really cover many iterations each"
    assert runs.preemptions["gpu"] == single.preemptions["gpu"] > 0
    assert np.array_equal(runs.table["node"], single.table["node"])
    for column in (
        "start_s",
        "finish_s",
        "ttft_s",
        "tbt_max_s",
        "energy_j",
        "prefill_energy_j",
        "preemptions",
    ):
        assert np.allclose(runs.table[column], single.table[column], rtol=1e-9, atol=1e-9, equal_nan=True), (
            column
        )
    for column in ("duration_s", "energy_j", "tokens"):
        assert np.isclose(runs.passes["gpu"][column].sum(), single.passes["gpu"][column].sum(), rtol=1e-12)
    assert np.allclose(runs.ledger["busy_s"], single.ledger["busy_s"], rtol=1e-12)
