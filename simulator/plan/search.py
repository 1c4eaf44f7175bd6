"""How a plan picks the candidates to simulate: all of them, or the promising ones.

* `grid`: every candidate of the space, in row-major order. Exact, and affordable for small spaces.
* `optuna`: Optuna's TPE sampler (seeded) proposes candidates from the results so far; the constraints go
  to the sampler as Optuna constraints (a violated SLO steers the search, it does not just add a penalty).
  Proposals come in fixed batches of `batch`, all simulated before the sampler hears any of them, so the
  sequence of candidates depends on the seed and the batch size, never on how many workers run them. A
  candidate proposed twice is simulated once.

Either way the result is the list of evaluated candidates in the order they were first proposed, each
with its seeds' run summaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridsim.core.errors import HybridsimError

from .backends import LocalBackend, RayBackend, Task
from .objective import aggregate
from .schema import Scenario as Plan
from .space import POLICY_DIMENSION, Space, key

Progress = Callable[[int], Any]


@dataclass
class Evaluated:
    """One simulated candidate: its choice, its seeds' summaries and its aggregated row."""

    choice: dict[str, Any]
    runs: list[dict[str, Any]]
    row: dict[str, Any]


def resolve_method(plan: Plan, space: Space) -> str:
    if plan.search.method != "auto":
        return plan.search.method
    return "grid" if space.size <= plan.search.max_grid else "optuna"


class _Evaluator:
    """Simulates batches of candidates on a backend, once each, remembering the order they came in."""

    def __init__(
        self,
        plan: Plan,
        space: Space,
        seeds: list[int],
        base_dir: Path | None,
        backend: LocalBackend | RayBackend,
        progress: Progress,
    ) -> None:
        self.plan, self.space, self.seeds, self.base_dir = plan, space, seeds, base_dir
        self.backend, self.progress = backend, progress
        self.done: dict[str, Evaluated] = {}
        self.warnings: list[str] = []

    def run(self, choices: list[dict[str, Any]]) -> list[Evaluated]:
        fresh = list({key(choice): choice for choice in choices if key(choice) not in self.done}.values())
        tasks: list[Task] = [
            (self.space.scenario(choice, seed), self.base_dir) for choice in fresh for seed in self.seeds
        ]
        results = self.backend.map(tasks, self.progress) if tasks else []
        per = len(self.seeds)
        for k, choice in enumerate(fresh):
            mine = results[k * per : (k + 1) * per]
            runs = [summary for summary, _ in mine]
            self.warnings.extend(message for _, messages in mine for message in messages)
            plan = self.plan
            row = aggregate(runs, plan.objective, plan.constraints, plan.no_saturation, plan.pareto_metric)
            self.done[key(choice)] = Evaluated(choice, runs, row)
        return [self.done[key(choice)] for choice in choices]


def grid_search(evaluator: _Evaluator, first_check: Callable[[Evaluated], None]) -> list[Evaluated]:
    """Every candidate; the first alone, so that a misnamed constraint fails before the rest run."""
    choices = evaluator.space.all_choices()
    first_check(evaluator.run(choices[:1])[0])
    evaluator.run(choices[1:])
    return list(evaluator.done.values())


def optuna_search(evaluator: _Evaluator, first_check: Callable[[Evaluated], None]) -> list[Evaluated]:
    try:
        import optuna
    except ImportError:
        raise HybridsimError(
            "search.method: optuna is not installed; pip install 'hybridsim[search]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan, space = evaluator.plan, evaluator.space
    sampler = optuna.samplers.TPESampler(seed=plan.search.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    lists = space.choice_lists()
    budget = min(plan.search.trials, space.size)
    asked = 0
    while asked < plan.search.trials and len(evaluator.done) < budget:
        batch = min(plan.search.batch, plan.search.trials - asked)
        trials = [study.ask() for _ in range(batch)]
        asked += batch
        choices = [
            {path: _suggest(trial, path, values) for path, values in lists.items()} for trial in trials
        ]
        checked = bool(evaluator.done)
        evaluated = evaluator.run(choices)
        if not checked:
            first_check(evaluated[0])
        for trial, result in zip(trials, evaluated, strict=True):
            row = result.row
            trial.set_constraint("violation", row["violation"] if math.isfinite(row["violation"]) else 1e9)
            value = row.get("objective")
            study.tell(trial, value if value is not None and math.isfinite(value) else 1e30)
    return list(evaluator.done.values())


def _suggest(trial: Any, path: str, values: list[Any]) -> Any:
    """Integers with an even step are searched as ordered integers, anything else as categories."""
    integral = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    steps = (
        {b - a for a, b in zip(values, values[1:], strict=False)} if integral and len(values) > 1 else set()
    )
    if path != POLICY_DIMENSION and len(steps) == 1 and min(steps) > 0:
        return trial.suggest_int(path, values[0], values[-1], step=steps.pop())
    index = trial.suggest_categorical(path, list(range(len(values))))
    return values[index]
