"""What the iterations of a batching engine cost: pure functions of (batch, context), beside the serving
tables.

A batching engine (vLLM, TGI) spends its day in forward passes. A *prefill* pass reads newly admitted
prompts and writes their KV cache; a *decode* iteration generates one token for every running request and
reads the whole batch's KV cache. The serving tables (`ServingCostModel`) price one pass. Between two changes
of the running batch (an admission, a finish, a preemption) the decode iterations differ only in how much
KV they read: it grows by the batch size every step. So a whole run of them is priced at once, vectorised
over the steps, and the event loop schedules one event at its end instead of one per token.

A power cap acts on every pass as on a request: the joules go through `energy.iteration_energy`, the one
path of energy in the simulator.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from hybridsim.core.profile_model import ServingCostModel

from ..energy import NO_CAP, PowerCap, iteration_energy


class DecodeRun(Protocol):
    """`steps` decode iterations of one unchanged batch; j counts iterations
    from the run's start (1..steps).
    """

    steps: int

    def end(self, j: int) -> float:
        """Time from the run's start to the end of iteration j (s)."""
        ...

    def energy(self, j: int) -> float:
        """Energy (CPU + GPU) of the first j iterations (J)."""
        ...

    def cpu(self, j: int) -> float:
        """CPU share of it (J)."""
        ...

    def longest_step(self, first: int, last: int) -> float:
        """Longest of iterations first + 1 .. last (s): a gap between two tokens of
        every request in the batch.
        """
        ...

    def totals(self, j: int) -> tuple[float, float, float]:
        """(end, energy, cpu) of the first j iterations at once (the event loop's one call per run)."""
        ...


class ArrayRun:
    """A run priced iteration by iteration (cumulative arrays)."""

    def __init__(self, end_s: np.ndarray, energy_j: np.ndarray, cpu_energy_j: np.ndarray) -> None:
        self.steps = int(end_s.size)
        self._end, self._energy, self._cpu = end_s.tolist(), energy_j.tolist(), cpu_energy_j.tolist()
        self._steps = np.diff(end_s, prepend=0.0)

    def end(self, j: int) -> float:
        return float(self._end[j - 1])

    def energy(self, j: int) -> float:
        return float(self._energy[j - 1])

    def cpu(self, j: int) -> float:
        return float(self._cpu[j - 1])

    def longest_step(self, first: int, last: int) -> float:
        return float(self._steps[first:last].max()) if last > first else 0.0

    def totals(self, j: int) -> tuple[float, float, float]:
        return float(self._end[j - 1]), float(self._energy[j - 1]), float(self._cpu[j - 1])


class _Strided:
    """Decode costs of one batch size at every context token count 0..size, and their sums along the stride.

    `total[x]` = cost(x) + cost(x - batch) + cost(x - 2 batch) + ...: so the iterations of a run, at contexts
    x0, x0 + batch, ..., cost `total[last] - total[x0 - batch]`, whatever the run's length.
    """

    def __init__(self, batch: int, size: int, grid: np.ndarray, columns: tuple[np.ndarray, ...]) -> None:
        self.size = size
        tokens = np.arange(size + 1, dtype=np.float64)
        rows = -(-(size + 1) // batch)
        sums = []
        for column in columns:
            dense = np.interp(tokens, grid, column)
            padded = np.zeros(rows * batch)
            padded[: size + 1] = dense
            sums.append(array("d", padded.reshape(rows, batch).cumsum(axis=0).ravel()[: size + 1].tobytes()))
            if not sums[1:]:
                self.time = array("d", dense.tobytes())
                """Decode time at each context (s); a flat array, so a run's strided
                slice is read without numpy.
                """
        self.time_sum, self.cpu_sum, self.gpu_sum = sums


class PrefixRun:
    """A run read off `_Strided` sums: constant work whatever its length."""

    __slots__ = ("steps", "_table", "_first", "_stride", "_base")

    def __init__(self, table: _Strided, batch: int, context: int, steps: int) -> None:
        self.steps = steps
        self._table, self._first, self._stride = table, context, batch
        before = context - batch
        self._base = (
            (table.time_sum[before], table.cpu_sum[before], table.gpu_sum[before])
            if before >= 0
            else (0.0, 0.0, 0.0)
        )

    def end(self, j: int) -> float:
        return self._table.time_sum[self._first + self._stride * (j - 1)] - self._base[0]

    def energy(self, j: int) -> float:
        at = self._first + self._stride * (j - 1)
        table, base = self._table, self._base
        return table.cpu_sum[at] - base[1] + table.gpu_sum[at] - base[2]

    def cpu(self, j: int) -> float:
        return self._table.cpu_sum[self._first + self._stride * (j - 1)] - self._base[1]

    def totals(self, j: int) -> tuple[float, float, float]:
        at = self._first + self._stride * (j - 1)
        table, base = self._table, self._base
        cpu = table.cpu_sum[at] - base[1]
        return table.time_sum[at] - base[0], cpu + table.gpu_sum[at] - base[2], cpu

    def longest_step(self, first: int, last: int) -> float:
        if last <= first:
            return 0.0
        start = self._first + self._stride * first
        return max(self._table.time[start : self._first + self._stride * last : self._stride])


def first_boundary(run: DecodeRun, elapsed: float, limit: int) -> int:
    """The first iteration (1..limit) that ends at or after `elapsed` s into the run.

    Iterations of one batch differ little in length, so the guess from the run's mean iteration is the
    answer or next to it: walk from there (two or three reads of `end` where a bisection takes ~log2 steps).
    """
    end = run.end
    total = end(limit)
    if elapsed > total:
        return limit
    j = min(max(int(elapsed * limit / total) + 1, 1), limit) if total > 0 else 1
    while j > 1 and end(j - 1) >= elapsed:
        j -= 1
    while end(j) < elapsed:
        j += 1
    return j


class IterationPricer:
    """What a pool's passes cost under its power cap: a prefill pass, or a run of decode iterations.

    Exact (`tabulate_tokens` = 0): every price is the serving model's own, capped through
    `energy.iteration_energy`. Tabulated: the interpolated tables (`serving_costs.py`) cost a fraction of a
    millisecond per call and a busy node prices a run every time its batch changes, so each (pass kind,
    batch size) is priced once, on first use, on a grid of token counts from 1 to `tabulate_tokens` (every
    `FINE` tokens up to `FINE_UNTIL`, geometric beyond; capped through the same function), and read by
    linear interpolation after that:
    exact at the grid's points and within the tests' bound of the model between them. Token counts past
    the grid are priced exactly.
    """

    FINE = 8
    """Tokens between grid points up to `FINE_UNTIL` (prompts and small contexts, where costs bend)."""
    FINE_UNTIL = 8192
    COARSE_POINTS = 1024
    """Geometrically spaced points from `FINE_UNTIL` to the top (0.5% apart for a 1.5M-token cache)."""

    def __init__(self, model: ServingCostModel, cap: PowerCap = NO_CAP, tabulate_tokens: int = 0) -> None:
        self.model = model
        self.cap = cap
        top = float(max(tabulate_tokens, 2))
        fine = np.arange(1.0, min(top, self.FINE_UNTIL), self.FINE)
        coarse = (
            np.geomspace(min(top, self.FINE_UNTIL), top, self.COARSE_POINTS)
            if top > self.FINE_UNTIL
            else np.empty(0)
        )
        self.grid = np.unique(np.concatenate([fine, coarse, [top]]))
        """Token counts the model is priced at (when tabulating)."""
        self._points = self.grid.tolist()
        self.top = float(self.grid[-1]) if tabulate_tokens > 0 else 0.0
        """Largest token count read from the grid (0: no grid)."""
        self._columns: dict[tuple[str, int], tuple[array, array, array]] = {}
        self._strides: dict[int, _Strided] = {}

    # -- exact ------------------------------------------------------------------------------------------

    def _exact(
        self, kind: str, batch: np.ndarray, tokens: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        price = self.model.prefill if kind == "prefill" else self.model.decode
        return iteration_energy(price(batch, tokens), self.cap)

    # -- the grid ---------------------------------------------------------------------------------------

    def _table(self, kind: str, batch: int) -> tuple[array, array, array]:
        """(time, CPU J, GPU J) at the grid's points (one more repeating the
        end, so an index + 1 is valid).
        """
        columns = self._columns.get((kind, batch))
        if columns is None:
            values = self._exact(kind, np.full(self.grid.size, float(batch)), self.grid)
            columns = tuple(array("d", np.append(v, v[-1]).tobytes()) for v in values)  # type: ignore[assignment]
            self._columns[(kind, batch)] = columns  # type: ignore[assignment]
        return columns  # type: ignore[return-value]

    def _at(self, kind: str, batch: int, tokens: float) -> tuple[float, float, float]:
        time, cpu, gpu = self._table(kind, batch)
        points = self._points
        index = max(bisect_right(points, tokens) - 1, 0)
        if index + 1 >= len(points):
            return time[index], cpu[index], gpu[index]
        weight = (tokens - points[index]) / (points[index + 1] - points[index])
        return (
            time[index] + (time[index + 1] - time[index]) * weight,
            cpu[index] + (cpu[index + 1] - cpu[index]) * weight,
            gpu[index] + (gpu[index + 1] - gpu[index]) * weight,
        )

    # -- what the event loop asks -----------------------------------------------------------------------

    def prefill(self, batch: int, prompt_tokens: int) -> tuple[float, float, float]:
        """(time s, energy J, CPU energy J) of one prefill pass over `batch` prompts
        of `prompt_tokens` in all.
        """
        if 1 <= prompt_tokens <= self.top:
            time, cpu, gpu = self._at("prefill", batch, prompt_tokens)
            return time, cpu + gpu, cpu
        times, cpus, gpus = self._exact("prefill", np.array([float(batch)]), np.array([float(prompt_tokens)]))
        return float(times[0]), float(cpus[0] + gpus[0]), float(cpus[0])

    def decode_run(self, batch: int, context_tokens: int, steps: int) -> DecodeRun:
        """Price `steps` decode iterations of `batch` requests holding `context_tokens` KV tokens at the
        first.

        Iteration k reads `context_tokens + k * batch` tokens (every request's KV grows by one token a step).
        """
        last = context_tokens + batch * (steps - 1)
        if last <= self.top:
            table = self._strides.get(batch)
            if table is None or table.size < last:
                table = self._strided(batch, last)
            return PrefixRun(table, batch, context_tokens, steps)
        context = context_tokens + batch * np.arange(steps, dtype=np.float64)
        time, cpu, gpu = self._exact("decode", np.full(steps, float(batch)), context)
        cpu_sum = np.cumsum(cpu)
        return ArrayRun(np.cumsum(time), cpu_sum + np.cumsum(gpu), cpu_sum)

    def _strided(self, batch: int, last: int) -> _Strided:
        """Batch `batch`'s strided sums, covering contexts up to `last` (grown by
        doubling, up to the grid).
        """
        table = self._strides.get(batch)
        if table is None or table.size < last:
            size = int(min(max(2 * (table.size if table else 0), last, 4096), self.top))
            columns = tuple(np.frombuffer(column)[:-1] for column in self._table("decode", batch))
            table = self._strides[batch] = _Strided(batch, size, self.grid, columns)
        return table


def marginal_estimate(
    pricer: IterationPricer, batch: int, context_tokens: int, input_tokens: int, output_tokens: float
) -> tuple[float, float]:
    """(energy J, latency s) a request adds when it joins a running batch of `batch` holding `context_tokens`.

    Its prefill alone, then n - 1 iterations of the batch one larger, each costing the difference between
    the bigger and the current batch's iteration (both at the mid-point context). A batching GPU's marginal
    cost is far below its batch-1 cost: the weights are read once per iteration whoever is in it.
    """
    steps = max(output_tokens - 1.0, 0.0)
    pre_time, pre_energy, _ = pricer.prefill(1, max(int(input_tokens), 1))
    grown = pricer.decode_run(
        batch + 1, max(int(context_tokens + input_tokens + 0.5 * steps * (batch + 1)), 1), 1
    )
    extra = grown.energy(1)
    if batch:
        extra -= pricer.decode_run(batch, max(int(context_tokens + 0.5 * steps * batch), 1), 1).energy(1)
    return pre_energy + steps * max(extra, 0.0), pre_time + steps * grown.end(1)


class ServedAlone:
    """A serving table seen as a request-level cost model (`CostModel`): each request alone, batch 1.

    What a router predicts for a batching pool when it does not look at the batch, and the no-queue
    reference the summary compares runs against. Uncapped: `cluster.price_requests` applies the cap.
    """

    def __init__(self, model: ServingCostModel) -> None:
        self.model = model
        self.name = f"{model.name} (served alone)"
        self.input_range = (0.0, float("inf"))
        """Unbounded here: the serving model itself follows the scenario's out_of_range."""
        self.output_range = (0.0, float("inf"))

    def _costs(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> tuple[np.ndarray, ...]:
        m = np.asarray(input_tokens, dtype=np.float64)
        steps = np.maximum(np.asarray(output_tokens, dtype=np.float64) - 1.0, 0.0)
        ones = np.ones_like(m)
        pre = self.model.prefill(ones, m)
        first, middle, last = (
            self.model.decode(ones, m + at) for at in (1.0, 1.0 + 0.5 * (steps - 1), steps)
        )

        def total(column: str) -> np.ndarray:
            a, b, c = (np.asarray(getattr(cost, column), dtype=np.float64) for cost in (first, middle, last))
            return np.asarray(getattr(pre, column), dtype=np.float64) + steps * (a + 4 * b + c) / 6.0

        return total("time_s"), total("cpu_energy_j"), total("gpu_energy_j")

    def runtime_s(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._costs(input_tokens, output_tokens)[0]

    def cpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._costs(input_tokens, output_tokens)[1]

    def gpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._costs(input_tokens, output_tokens)[2]

    def energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        _, cpu, gpu = self._costs(input_tokens, output_tokens)
        return cpu + gpu
