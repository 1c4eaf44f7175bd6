"""The batching nodes' own event heap plays events in SimPy's order: time first, then scheduling order; a
moved event replaces the old one; and a whole run gives the same answers as one SimPy event per node event."""

from __future__ import annotations

import numpy as np
import pytest
from hybridsim.simulator.cluster import cluster as cluster_module
from hybridsim.simulator.cluster.continuous import ContinuousPool
from hybridsim.simulator.cluster.continuous_chunked import ChunkedPrefillPool
from hybridsim.simulator.cluster.node_timeline import NodeTimeline, SimPyTimeline
from test_continuous_physics import small_kv_run


class Node:
    def __init__(self) -> None:
        self.wake = 0


def test_events_play_in_time_then_scheduling_order_up_to_the_time_asked() -> None:
    timeline, seen = NodeTimeline(), []
    a, b, c = Node(), Node(), Node()
    timeline.at(2.0, a, lambda: seen.append(("a", timeline.now)))
    timeline.at(1.0, b, lambda: seen.append(("b", timeline.now)))
    timeline.at(2.0, c, lambda: seen.append(("c", timeline.now)))
    timeline.play_until(1.5)
    assert seen == [("b", 1.0)] and timeline.now == 1.5
    timeline.play_until(2.0)
    assert seen == [("b", 1.0), ("a", 2.0), ("c", 2.0)] and timeline.now == 2.0


def test_a_moved_event_replaces_the_old_one_and_actions_may_schedule_within_the_window() -> None:
    timeline, seen = NodeTimeline(), []
    node, other = Node(), Node()
    timeline.at(5.0, node, lambda: seen.append("late"))
    timeline.at(3.0, node, lambda: seen.append("moved"))  # a cut: the run now ends earlier
    timeline.at(1.0, other, lambda: timeline.at(timeline.now + 1.0, other, lambda: seen.append("chained")))
    timeline.play_until(float("inf"))
    assert seen == ["chained", "moved"]
    assert timeline.now == 3.0, "played to the end, the clock stays at the last event"


def _on_simpy(base: type[ContinuousPool]) -> type[ContinuousPool]:
    class OnSimPy(base):  # type: ignore[misc, valid-type]
        def __init__(self, setup, first_index, cluster) -> None:  # type: ignore[no-untyped-def]
            super().__init__(setup, first_index, cluster)
            self.timeline = SimPyTimeline(cluster.env)

    return OnSimPy


@pytest.mark.parametrize("chunked", [False, True])
def test_a_run_gives_the_answers_of_one_simpy_event_per_node_event(chunked: bool, monkeypatch) -> None:
    """Preemptions, cuts by newcomers and a request-level pool beside the batching one, on both queues."""
    lazy, requests = small_kv_run(chunked=chunked)
    monkeypatch.setattr(cluster_module, "ContinuousPool", _on_simpy(ContinuousPool))
    monkeypatch.setattr(cluster_module, "ChunkedPrefillPool", _on_simpy(ChunkedPrefillPool))
    eager, _ = small_kv_run(chunked=chunked)
    assert lazy.preemptions["gpu"] > 0
    assert np.array_equal(lazy.table["node"], eager.table["node"])
    for column in ("start_s", "finish_s", "ttft_s", "tbt_max_s", "energy_j", "preemptions"):
        assert np.allclose(lazy.table[column], eager.table[column], rtol=1e-12, atol=1e-12, equal_nan=True)
    for column in ("start_s", "duration_s", "energy_j", "batch", "tokens"):
        assert np.allclose(lazy.passes["gpu"][column], eager.passes["gpu"][column], rtol=1e-12, atol=1e-12)
