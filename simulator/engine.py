"""One day in the datacenter: requests arrive, a router places them, nodes serve them, the ledger fills.

The engine wires the parts together for one run, in the order the data flows:

1. price every request on every system up front (vectorised cost models, power caps);
2. let the predictor guess every answer length it can guess before the day starts;
3. start a SimPy environment with the door (`_Door`): at each arrival time the batching nodes catch up
   (`Cluster.catch_up`: their own events, kept off SimPy's queue), the router is shown the request and the
   floor, names a node, and the node's pool starts it or queues it;
4. run until every queue is empty (every request is served exactly once, however long that takes), the
   batching nodes last;
5. turn the ledger into per-request columns and the nodes' books into energy, through the one energy path
   (`energy.py`): active energy per request from the profile (power cap and batch share applied), plus
   idle power x idle time per node, up to the end of the run (the horizon: the last finish, or the end of
   the arrival window if later).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from simpy.events import Timeout

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_model import CostModel

from .arrivals import RequestStream
from .cluster import Cluster, CostEstimator, PoolSetup, SystemCosts, price_requests
from .cluster.continuous import ContinuousPool
from .cluster.records import NOT_SERVED
from .cluster.serving_records import ServingRecords
from .energy import NO_CAP, PowerCap, request_energy
from .metrics.records import RequestTable
from .metrics.result import RunResult
from .policies.base import Policy, bind
from .predictors import Predictor
from .profiles.cost_models import outside_message
from .request import Request


@dataclass(frozen=True)
class PoolConfig:
    """A pool as the engine needs it: the operator's set-up and the system's cost models."""

    setup: PoolSetup
    cost_model: CostModel
    """Prices the requests served here, and the router's predictions of them (clamping or extrapolating as
    the scenario says; never raising: `strict_range` is checked on the served requests after the run)."""
    cap: PowerCap = NO_CAP
    strict_range: bool = False
    """True: a request served here outside the profile's measured range is an error (out_of_range: error)."""
    profile: str = ""
    """The profile's name, for messages and the summary."""


def simulate(
    pools: Sequence[PoolConfig],
    stream: RequestStream,
    policy: Policy,
    predictor: Predictor,
    policy_rng: np.random.Generator | None = None,
    predictor_rng: np.random.Generator | None = None,
) -> RunResult:
    """Run one policy over one request stream on one cluster and return the ledger."""
    requests = len(stream)
    if requests == 0:
        raise HybridsimError("arrival: no requests to simulate")
    cluster = Cluster([pool.setup for pool in pools], requests)
    m, n = stream.input_tokens, stream.output_tokens
    costs: dict[str, SystemCosts] = {}
    for config in pools:
        pool = cluster.pools[config.setup.name]
        costs[pool.name] = price_requests(config.cost_model, m, n, config.cap)
        pool.load(costs[pool.name], CostEstimator(config.cost_model, config.cap))
        if isinstance(pool, ContinuousPool):
            pool.attach(m, n)
    predictions = predictor.prepare(m, stream.max_tokens, n, predictor_rng or np.random.default_rng(0))
    bind(policy, cluster, policy_rng or np.random.default_rng(0))
    if getattr(policy, "needs_estimates", False):
        cluster.track_estimates(requests)
        if predictions is not None:
            for pool in cluster.pools.values():
                if pool.nodes:
                    pool.estimator.prime(m, predictions)  # type: ignore[union-attr]
    guessed = array("d", bytes(8 * requests)) if predictions is None else None
    if predictor.learns:
        cluster.observer = predictor.observe
    _Door(cluster, stream, policy, predictions, predictor, guessed).open()
    cluster.env.run()
    cluster.catch_up(float("inf"))
    if predictions is None:
        predictions = np.frombuffer(guessed, dtype=np.float64)  # type: ignore[arg-type]
    return _finish(cluster, pools, stream, costs, predictions)


class _Door:
    """The door: releases each request at its arrival time to the router.

    One SimPy event per arrival time, whose callback routes every request arriving then and schedules the
    next (a callback rather than a SimPy process: the same events in the same order, without resuming a
    generator per request).
    """

    def __init__(
        self,
        cluster: Cluster,
        stream: RequestStream,
        policy: Policy,
        predictions: np.ndarray | None,
        predictor: Predictor,
        guessed: array | None,
    ) -> None:
        self.cluster, self.env = cluster, cluster.env
        self.arrival = array("d", np.ascontiguousarray(stream.arrival_s, dtype=np.float64).tobytes())
        self.inputs = array("q", np.ascontiguousarray(stream.input_tokens, dtype=np.int64).tobytes())
        self.limits = array("q", np.ascontiguousarray(stream.max_tokens, dtype=np.int64).tobytes())
        self.fixed = array("d", predictions.tobytes()) if predictions is not None else None
        self.guessed = guessed
        self.request = Request()
        self.route, self.admit, self.predict = policy.route, cluster.admit, predictor.predict
        self.next = 0
        """The next request to arrive."""

    def open(self) -> None:
        """Schedule the first arrival."""
        self._wait()

    def _wait(self) -> None:
        if self.next < len(self.arrival):
            Timeout(self.env, max(self.arrival[self.next] - self.env.now, 0.0)).callbacks.append(
                self._release
            )

    def _release(self, _event: object) -> None:
        """Route every request arriving now, then wait for the next."""
        env, arrival, request, cluster = self.env, self.arrival, self.request, self.cluster
        inputs, limits, fixed, guessed = self.inputs, self.limits, self.fixed, self.guessed
        route, admit, predict = self.route, self.admit, self.predict
        cluster.catch_up(env.now)
        index, count = self.next, len(arrival)
        while index < count:
            when = arrival[index]
            if when > env.now:
                break
            request.index = index
            request.arrival_s = when
            request.input_tokens = inputs[index]
            request.max_tokens = limits[index]
            if fixed is not None:
                request.predicted_output_tokens = fixed[index]
            else:
                request.predicted_output_tokens = guessed[index] = predict(index)  # type: ignore[index]
            admit(route(request, cluster), request)
            index += 1
        self.next = index
        self._wait()


def _finish(
    cluster: Cluster,
    pools: Sequence[PoolConfig],
    stream: RequestStream,
    costs: dict[str, SystemCosts],
    predictions: np.ndarray,
) -> RunResult:
    """Turn the filled ledger into per-request columns; check the profile ranges the scenario insists on."""
    records = cluster.records
    node = np.frombuffer(records.node, dtype=np.int32).copy()
    if (node == NOT_SERVED).any():
        raise RuntimeError(
            f"{int((node == NOT_SERVED).sum())} requests were never served"
        )  # a bug, not input
    node_system = cluster.system_of_node()
    system_code = node_system[node]
    start = np.frombuffer(records.start_s, dtype=np.float64).copy()
    finish = np.frombuffer(records.finish_s, dtype=np.float64).copy()
    share = np.frombuffer(records.energy_scale, dtype=np.float64)
    energy, cpu, gpu = (np.zeros(len(node)) for _ in range(3))
    outside = np.zeros(len(node), dtype=bool)
    for code, config in enumerate(pools):
        here = system_code == code
        priced = costs[config.setup.name]
        if config.setup.serving is not None:
            continue  # priced pass by pass during the run (`_streaming_columns`)
        served = request_energy(
            config.cost_model, stream.input_tokens[here], stream.output_tokens[here], config.cap, share[here]
        )
        energy[here], cpu[here], gpu[here] = served.energy_j, served.cpu_j, served.gpu_j
        outside[here] = priced.outside_range[here]
        if config.strict_range and (priced.outside_range & here).any():
            why = outside_message(
                config.cost_model, config.profile, stream.input_tokens[here], stream.output_tokens[here]
            )
            raise HybridsimError(
                f"cluster.{config.setup.name}: {why}; set cost_model.out_of_range to clamp or extrapolate"
            )
    arrival = np.asarray(stream.arrival_s, dtype=np.float64)
    streamed = _streaming_columns(
        cluster, system_code, energy, cpu, gpu, arrival, finish, stream.output_tokens
    )
    columns: dict[str, np.ndarray] = {
        "request_id": np.arange(len(node), dtype=np.int64),
        "arrival_s": arrival,
        "start_s": start,
        "finish_s": finish,
        "node": node,
        "system_code": system_code,
        "input_tokens": np.asarray(stream.input_tokens, dtype=np.int64),
        "output_tokens": np.asarray(stream.output_tokens, dtype=np.int64),
        "max_tokens": np.asarray(stream.max_tokens, dtype=np.int64),
        "predicted_output_tokens": np.asarray(predictions, dtype=np.float64),
        "wait_s": np.maximum(start - arrival, 0.0),
        "service_s": finish - start,
        "latency_s": np.maximum(finish - arrival, 0.0),
        "energy_j": energy,
        "cpu_energy_j": cpu,
        "gpu_energy_j": gpu,
        "in_warmup": arrival < stream.warmup_s,
        "outside_profile_range": outside,
        **streamed,
    }
    table = RequestTable(columns, tuple(cluster.pools))
    horizon = max(float(finish.max()), stream.duration_s or 0.0)
    return RunResult(
        table,
        tuple(cluster.pools),
        node_system,
        cluster.idle_power_w(),
        cluster.node_ledger(),
        horizon,
        costs,
        stream.warmup_s,
        stream.outputs_cut,
        {name: pool.log.columns() for name, pool in _batching(cluster).items()},
        {name: pool.preemptions for name, pool in _batching(cluster).items()},
        {name: pool.kv_capacity for name, pool in _batching(cluster).items()},
    )


def _batching(cluster: Cluster) -> dict[str, ContinuousPool]:
    """The continuously batching pools, by name."""
    found: dict[str, object] = {name: pool for name, pool in cluster.pools.items()}
    return {name: pool for name, pool in found.items() if isinstance(pool, ContinuousPool)}


def _streaming_columns(
    cluster: Cluster,
    system_code: np.ndarray,
    energy: np.ndarray,
    cpu: np.ndarray,
    gpu: np.ndarray,
    arrival: np.ndarray,
    finish: np.ndarray,
    output_tokens: np.ndarray,
) -> dict[str, np.ndarray]:
    """Token-level columns; on continuously batching pools, energy is the passes' shares (overwritten here).

    A request-level node hands back its answer whole: its first token comes with the last (TTFT = latency),
    there is no time between tokens, and the profile does not split its energy into prefill and decode (NaN).
    """
    latency = np.maximum(finish - arrival, 0.0)
    ttft, tbt_max = latency.copy(), np.zeros(len(arrival))
    prefill_j, decode_j = np.full(len(arrival), np.nan), np.full(len(arrival), np.nan)
    preemptions = np.zeros(len(arrival), dtype=np.int64)
    for code, pool in enumerate(cluster.pools.values()):
        if not isinstance(pool, ContinuousPool):
            continue
        here = system_code == code
        records: ServingRecords = pool.records

        def column(values: array, kind: str = "d", here: np.ndarray = here) -> np.ndarray:
            return np.frombuffer(values, dtype=np.float64 if kind == "d" else np.int64)[here]

        prefill_j[here], decode_j[here] = column(records.prefill_j), column(records.decode_j)
        prefill_cpu, decode_cpu = column(records.prefill_cpu_j), column(records.decode_cpu_j)
        energy[here] = prefill_j[here] + decode_j[here]
        cpu[here] = prefill_cpu + decode_cpu
        gpu[here] = energy[here] - cpu[here]
        ttft[here] = column(records.first_token_s) - arrival[here]
        tbt_max[here] = column(records.tbt_max_s)
        preemptions[here] = column(records.preemptions, "q")
    gaps = np.maximum(np.asarray(output_tokens, dtype=np.float64) - 1.0, 0.0)
    tbt_mean = np.divide(latency - ttft, gaps, out=np.zeros(len(arrival)), where=gaps > 0)
    return {
        "ttft_s": ttft,
        "tbt_mean_s": tbt_mean,
        "tbt_max_s": tbt_max,
        "prefill_energy_j": prefill_j,
        "decode_energy_j": decode_j,
        "preemptions": preemptions,
    }
