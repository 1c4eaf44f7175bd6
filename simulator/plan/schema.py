"""The schema of `kind: plan` scenarios (see `plan.py` for an annotated example).

A plan is a base simulation scenario plus what may change (the search space), what to minimise (the
objective), what must hold (the constraints) and how to search. Validated once, at the edge; errors name
the YAML path of the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..scenario.simulation_schema import CarbonSpec, PredictorSpec, changed, unread

MAX_SEEDS = 10_000
"""Most seeds a candidate runs with (each is a whole simulation; a 95% interval needs a handful)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RangeSpec(_Strict):
    """Integers from `from` to `to`, both included, every `step`."""

    start: int = Field(alias="from")
    to: int
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _not_empty(self) -> RangeSpec:
        if self.to < self.start:
            raise PydanticCustomError("range", "empty range: 'to' is below 'from'")
        return self

    def values(self) -> list[int]:
        return list(range(self.start, self.to + 1, self.step))


class PolicyChoice(_Strict):
    """One policy the plan may pick, with fixed `params` and a `grid` of values for some of them."""

    name: str | None = None
    policy: str
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    predictor: PredictorSpec | None = None

    @model_validator(mode="after")
    def _grid_not_empty(self) -> PolicyChoice:
        for key, values in self.grid.items():
            if not values:
                raise PydanticCustomError("grid", f"grid.{key}: empty list of values")
            if key in self.params:
                raise PydanticCustomError("grid", f"grid.{key}: also fixed in params; give it in one place")
        return self


class ObjectiveSpec(_Strict):
    """What to minimise, per run: energy (kWh), cost (currency) or carbon (kg CO2)."""

    kind: Literal["energy", "cost", "carbon"] = "energy"
    price_per_kwh: float | None = Field(default=None, ge=0)
    node_hour: dict[str, float] = Field(default_factory=dict)
    """Price of one node of a pool for one hour of the run (pool name -> price); pools not named cost 0."""
    carbon: CarbonSpec | None = None

    @model_validator(mode="after")
    def _complete(self) -> ObjectiveSpec:
        if self.kind == "cost" and self.price_per_kwh is None:
            raise PydanticCustomError("objective", "kind 'cost' needs price_per_kwh (and node_hour prices)")
        if self.kind == "carbon" and self.carbon is None:
            raise PydanticCustomError(
                "objective", "kind 'carbon' needs carbon: with g_per_kwh or intensity_csv"
            )
        if any(price < 0 for price in self.node_hour.values()):
            raise PydanticCustomError("objective", "node_hour prices must be >= 0")
        key = changed(self, "price_per_kwh", "node_hour") if self.kind != "cost" else None
        if key:
            raise unread(key, f"prices the 'cost' objective only; kind {self.kind!r} does not read it")
        return self


class ConstraintSpec(_Strict):
    """A bound on one figure of a run's summary, by its dotted path (`latency_s.p99`, `ttft_s.p99`)."""

    metric: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ConstraintSpec:
        if self.max is None and self.min is None:
            raise PydanticCustomError("constraint", "give max or min")
        return self

    @property
    def label(self) -> str:
        parts = [f"{self.metric} >= {self.min:g}"] if self.min is not None else []
        parts += [f"{self.metric} <= {self.max:g}"] if self.max is not None else []
        return " and ".join(parts)


class SearchSpec(_Strict):
    """`grid` tries every candidate; `optuna` samples `trials` of them with Optuna's TPE sampler, asking
    `batch` candidates at a time (results do not depend on the number of workers); `auto` is `grid` up to
    `max_grid` candidates, else `optuna`."""

    method: Literal["auto", "grid", "optuna"] = "auto"
    trials: int = Field(default=200, ge=1)
    batch: int = Field(default=16, ge=1)
    seed: int = Field(default=0, ge=0)
    max_grid: int = Field(default=2000, ge=1)

    @model_validator(mode="after")
    def _read(self) -> SearchSpec:
        key = changed(self, "trials", "batch", "seed") if self.method == "grid" else None
        if key:
            raise unread(
                key, "steers method optuna (or auto beyond max_grid); method grid tries every candidate"
            )
        if self.method == "optuna" and changed(self, "max_grid"):
            raise unread(
                "max_grid", "chooses between grid and optuna for method auto; method optuna reads trials"
            )
        return self


class ExecutionSpec(_Strict):
    """Where the runs execute; never part of the results (`--backend`, `--address` override it)."""

    backend: Literal["local", "ray"] = "local"
    address: str | None = None
    workers: int | None = Field(default=None, ge=1)


class Scenario(_Strict):
    kind: Literal["plan"]
    name: str | None = None
    description: str | None = None
    base: Path | dict[str, Any]
    """A `kind: simulation` scenario: a file (relative to the plan) or the mapping itself."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Fixed changes to the base, by YAML path (`arrival.requests: 10000`)."""
    space: dict[str, list[Any]] = Field(default_factory=dict)
    """The base's parameters to search, by YAML path: a list of values or an integer range
    (`{from: 0, to: 96, step: 8}`, read as the list of its values)."""
    policies: list[PolicyChoice] | None = Field(default=None, min_length=1)
    """The policies to choose from (default: the base's, as they are)."""
    seed: int | None = Field(default=None, ge=0)
    """Overrides the base's seed (`--seed`): the first of `seeds: N`."""
    seeds: list[int] | int = 1
    """Seeds every candidate runs with: a list, or a count (the base's seed and the ones after it)."""
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    no_saturation: bool = True
    """A candidate with a saturated pool (falling behind its load) is infeasible."""
    pareto_metric: str = "latency_s.p99"
    search: SearchSpec = Field(default_factory=SearchSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec, exclude=True)

    @field_validator("space", mode="before")
    @classmethod
    def _ranges(cls, space: Any) -> Any:
        if not isinstance(space, dict):
            return space
        expanded = {}
        for path, values in space.items():
            if isinstance(values, dict):
                try:
                    values = RangeSpec.model_validate(values).values()
                except ValidationError as error:
                    first = error.errors()[0]
                    where = ".".join(str(part) for part in first["loc"])
                    problem = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
                    raise PydanticCustomError(
                        "space",
                        "{path}: {problem}",
                        {"path": f"{path}.{where}".rstrip("."), "problem": problem},
                    ) from None
            if isinstance(values, list) and not values:
                raise PydanticCustomError("space", "{path}: empty list of values", {"path": path})
            expanded[path] = values
        return expanded

    @model_validator(mode="after")
    def _space(self) -> Scenario:
        if isinstance(self.seeds, int) and self.seeds < 1:
            raise PydanticCustomError("seeds", "seeds: at least one")
        count = self.seeds if isinstance(self.seeds, int) else len(self.seeds)
        if count > MAX_SEEDS:  # 10**9 seeds was a list of 10**9 ints before a single run (MemoryError)
            raise unread("seeds", f"{count:,} runs of every candidate; at most {MAX_SEEDS:,}")
        if isinstance(self.seeds, list) and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise PydanticCustomError("seeds", "seeds: a non-empty list of distinct seeds")
        if isinstance(self.seeds, list) and self.seed is not None:
            raise unread(
                "seed", "seeds: lists every seed to run (so seed, or --seed, would go unread); give a count"
            )
        return self
