"""Where a plan's simulations run: worker processes on this machine, or a Ray cluster.

A plan runs thousands of independent simulations (candidate x seed). Each is a pure function of its
scenario, so *where* it runs cannot change its result: both backends hand back the results in the order
the tasks were given, and the plan's tables are byte-identical whichever backend and however many workers.

* `local` (the default): a pool of worker processes on this machine (the simulation scenario's own task
  function and `WorkerPool`: the workers die with the plan), kept open for the whole plan.
* `ray`: tasks on a Ray cluster, an existing one (`--address host:port`) or one started here for the plan
  (`workers` CPUs). Ray is an optional extra: `pip install 'hybridsim[ray]'`. The workers must be able to
  import hybridsim (installed on every node of an existing cluster).

Ctrl-C, SIGTERM or SIGHUP ends the work at once (the local workers, the Ray tasks) and leaves no output
behind.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hybridsim.core.errors import HybridsimError

from ..scenario.simulation import _task
from ..scenario.simulation_schema import Scenario as Simulation
from ..scenario.workers import WorkerPool

Task = tuple[Simulation, Path | None]
Result = tuple[dict[str, Any], list[str]]
Progress = Callable[[int], Any]
ADDRESS_TIMEOUT_S = 5.0


def evaluate(task: Task) -> Result:
    """Run one candidate's scenario (its only policy); a failing run becomes `{"error": message}`."""
    scenario, base_dir = task
    try:
        return _task((scenario, 0, base_dir, None))
    except HybridsimError as error:
        return {"error": str(error)}, []


class LocalBackend:
    """Worker processes on this machine (one process: no pool at all)."""

    name = "local"

    def __init__(self, workers: int | None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: WorkerPool | None = None

    def map(self, tasks: Sequence[Task], progress: Progress) -> list[Result]:
        if self.workers == 1 or len(tasks) == 1:
            results = []
            for task in tasks:
                results.append(evaluate(task))
                progress(1)
            return results
        if self._pool is None:  # no more processes than tasks: the first batch is the largest
            self._pool = WorkerPool(min(self.workers, len(tasks)))
        results = []
        try:
            for result in self._pool.imap(evaluate, list(tasks)):
                results.append(result)
                progress(1)
        except BaseException:
            self._pool.terminate()
            self._pool = None
            raise
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _check_address(address: str) -> None:
    """Fail fast, on one line, when nothing listens at `host:port` (Ray would retry for a minute)."""
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise HybridsimError(f"--address {address}: expected host:port (or ray://host:port)")
    try:
        with socket.create_connection((host, int(port)), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as error:
        raise HybridsimError(f"--address {address}: no Ray cluster answers there ({error})") from None


class RayBackend:
    """Tasks on a Ray cluster: an existing one at `address`, or a local one started with `workers` CPUs."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None) -> None:
        try:
            import ray
        except ImportError:
            raise HybridsimError(
                "--backend ray: Ray is not installed; pip install 'hybridsim[ray]'"
            ) from None
        if address is not None:
            _check_address(address)
        self._ray = ray
        self.workers = workers
        self._started = not ray.is_initialized()
        if self._started:
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,  # Ray's start-up notes would bury the plan's one-line result
            }
            if address is None:
                options["num_cpus"] = workers or os.cpu_count() or 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ray.init(address=address, **options)
                except (ConnectionError, RuntimeError, ValueError) as error:
                    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    raise HybridsimError(
                        f"--address {address}: cannot join the Ray cluster: {first}"
                    ) from None
        self._remote = ray.remote(num_cpus=1, max_retries=0)(evaluate)

    def map(self, tasks: Sequence[Task], progress: Progress) -> list[Result]:
        ray = self._ray
        limit = self.workers or len(tasks)
        results: dict[int, Result] = {}
        pending: dict[Any, int] = {}
        queue = list(enumerate(tasks))
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    index, task = queue.pop(0)
                    pending[self._remote.remote(task)] = index
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    results[pending.pop(ref)] = ray.get(ref)
                    progress(1)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [results[index] for index in range(len(tasks))]

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def make_backend(backend: str, address: str | None, workers: int | None) -> LocalBackend | RayBackend:
    if backend == "ray":
        return RayBackend(address, workers)
    if address is not None:
        raise HybridsimError("--address: names a Ray cluster; use it with --backend ray")
    return LocalBackend(workers)
