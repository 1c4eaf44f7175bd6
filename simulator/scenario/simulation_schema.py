"""The schema of `kind: simulation` scenarios (see `simulation.py` for an annotated example).

Validated once, at the edge: every field's bounds and every cross-field rule live here, so the code that
runs a scenario can trust what it is handed. Errors name the YAML path of the field. A key that nothing
would read in its context (`cv` of a Poisson stream, `max_num_seqs` of a request-level pool) is refused
rather than accepted and ignored: a researcher who sets it believes it shaped the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hybridsim.core.errors import HybridsimError
from hybridsim.core.limits import INT64_MAX, MAX_NODES, MAX_REQUESTS, TOKENS_MAX

from ..policies.registry import BUILTIN_POLICIES, is_policy_reference
from ..workload.spec import WorkloadSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .nan/.inf cannot be simulated


def unread(key: str, why: str) -> PydanticCustomError:
    """Refuse `key` (a dotted path below the failing model), given where nothing reads it; the loader
    appends `key` to the YAML path of its message."""
    return PydanticCustomError("unread_key", "{why}", {"yaml_key": key, "why": why})


def changed(model: BaseModel, *names: str) -> str | None:
    """The first of `names` set away from its default. A sweep writes every default out and validates
    again, so "given" has to mean "not the default"."""
    fields = type(model).model_fields
    return next(
        (
            name
            for name in names
            if getattr(model, name) != fields[name].get_default(call_default_factory=True)
        ),
        None,
    )


class PowerCapSpec(_Strict):
    runtime_factor: float = Field(gt=0)
    power_factor: float = Field(gt=0)


class PoolSpec(_Strict):
    profile: str
    count: int = Field(ge=0, le=MAX_NODES)
    idle_power_w: float | None = Field(default=None, ge=0)
    queue: Literal["fifo", "shared"] = "fifo"
    max_batch: int = Field(default=1, ge=1, le=TOKENS_MAX)
    batch_runtime_growth: float = Field(default=0.1, ge=0)
    batch_energy_growth: float = Field(default=0.1, ge=0)
    power_cap: PowerCapSpec | None = None
    serving: Literal["request", "continuous"] = "request"
    """'request': a node serves one request (or one static batch) at a time, priced by the request-level
    profile; 'continuous': a vLLM-like engine priced pass by pass from the profile's serving tables."""
    max_num_seqs: int = Field(default=256, ge=1)
    max_num_batched_tokens: int = Field(default=8192, ge=1)
    kv_capacity_tokens: int | None = Field(default=None, ge=1)
    """KV-cache tokens per node (default: the serving tables')."""
    chunked_prefill: bool = False
    """Mix prompt chunks with the running decodes in every iteration (else a prefill pass pauses them)."""

    @model_validator(mode="after")
    def _serving(self) -> PoolSpec:
        if self.serving == "request":
            key = changed(
                self, "max_num_seqs", "max_num_batched_tokens", "kv_capacity_tokens", "chunked_prefill"
            )
            if key:
                raise unread(
                    key, "read only by a serving: continuous pool; this one serves request by request"
                )
            return self
        if self.queue != "fifo":
            raise unread(
                "queue", "serving: continuous: each node keeps its own waiting line; leave it at fifo"
            )
        if self.max_batch != 1:
            raise unread(
                "max_batch", "serving: continuous: batches form per iteration (max_num_seqs); leave it at 1"
            )
        key = changed(self, "batch_runtime_growth", "batch_energy_growth")
        if key:
            raise unread(
                key,
                "prices request-level static batches; a serving: continuous pool is priced pass by pass "
                "from its profile's serving tables",
            )
        return self


OUT_OF_RANGE_PRICING = {
    "clamp": "priced at the nearest measured length (out_of_range: clamp)",
    "extrapolate": "priced by the cost curves continued past the measured range (out_of_range: extrapolate)",
    "error": "refused (out_of_range: error)",
}
"""How requests outside a profile's measured range are priced, in the summary's words."""


class CostModelSpec(_Strict):
    method: Literal["interpolated", "paper"] = "interpolated"
    out_of_range: Literal["error", "clamp", "extrapolate"] = "clamp"
    """Default clamp: the shipped workloads run on the shipped profiles (Alpaca has 6-8-token prompts, the
    profiles start at 8 or 9 tokens); the summary counts the requests that fell outside."""


class ArrivalSpec(_Strict):
    process: Literal["poisson", "renewal", "diurnal", "trace"] = "poisson"
    rate: float | None = Field(default=None, gt=0)
    cv: float | None = Field(default=None, gt=0)
    amplitude: float = Field(default=0.5, ge=0, le=1)
    period_s: float = Field(default=86400.0, gt=0)
    phase_s: float = 0.0
    trace: Path | None = None
    time_scale: float = Field(default=1.0, gt=0)
    requests: int | None = Field(default=None, ge=1, le=MAX_REQUESTS)
    duration_s: float | None = Field(default=None, gt=0)
    warmup_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> ArrivalSpec:
        if self.process == "trace" and self.trace is None:
            raise PydanticCustomError("arrival", "process 'trace' needs trace: <file.csv>")
        if self.process != "trace" and self.trace is not None:
            raise PydanticCustomError(
                "arrival", f"trace: is read only by process 'trace', not {self.process!r}"
            )
        if self.process != "trace" and self.rate is None:
            raise PydanticCustomError("arrival", f"process {self.process!r} needs rate (requests per second)")
        if self.process == "trace" and self.rate is not None:
            raise unread(
                "rate", "a trace replays its own arrival times; speed them up or down with time_scale"
            )
        if self.process != "trace" and self.time_scale != 1.0:
            raise unread("time_scale", f"scales a trace's times; process {self.process!r} runs at its rate")
        if self.process != "renewal" and self.cv is not None:
            raise unread("cv", f"shapes the gaps of process 'renewal' only, not {self.process!r}")
        key = changed(self, "amplitude", "period_s", "phase_s") if self.process != "diurnal" else None
        if key:
            raise unread(key, f"shapes the rate of process 'diurnal' only, not {self.process!r}")
        if self.process == "renewal" and self.cv is None:
            raise PydanticCustomError("arrival", "process 'renewal' needs cv (coefficient of variation)")
        if self.requests is not None and self.duration_s is not None:
            raise PydanticCustomError("arrival", "give requests or duration_s, not both")
        if self.rate is not None and self.duration_s is not None:
            expected = self.rate * (1.0 + self.amplitude) * self.duration_s
            if not expected <= MAX_REQUESTS:
                raise PydanticCustomError(
                    "arrival",
                    f"rate x duration_s asks for about {expected:.3g} requests; "
                    f"at most {MAX_REQUESTS:,} per run",
                )
        return self


class PredictorSpec(_Strict):
    kind: Literal["max_tokens", "oracle", "bucket_mean"] = "max_tokens"
    noise: float = Field(default=0.0, ge=0)
    prior_tokens: float | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _read(self) -> PredictorSpec:
        if self.kind != "oracle" and self.noise != 0:
            raise unread("noise", f"blurs the 'oracle' predictor's guesses only, not {self.kind!r}'s")
        if self.kind != "bucket_mean" and self.prior_tokens is not None:
            raise unread(
                "prior_tokens", f"is the 'bucket_mean' predictor's first guess only, not {self.kind!r}'s"
            )
        return self


class PolicySpec(_Strict):
    name: str | None = None
    policy: str
    params: dict[str, Any] = Field(default_factory=dict)
    predictor: PredictorSpec | None = None

    @field_validator("policy")
    @classmethod
    def _known(cls, value: str) -> str:
        if not is_policy_reference(value):
            known = ", ".join(BUILTIN_POLICIES)
            raise PydanticCustomError(
                "policy", f"unknown policy {value!r} (built-ins: {known}; or module:Class)"
            )
        return value

    @property
    def label(self) -> str:
        return self.name or self.policy


class CostSpec(_Strict):
    lam: float = Field(default=0.5, ge=0, le=1)
    reference: str | None = None


class CarbonSpec(_Strict):
    """Grid carbon intensity: a constant, or a CSV series `time_s,g_per_kwh` (see `metrics/carbon.py`)."""

    g_per_kwh: float | None = Field(default=None, ge=0)
    intensity_csv: Path | None = None
    period_s: float | None = Field(default=None, gt=0)
    offset_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> CarbonSpec:
        if (self.g_per_kwh is None) == (self.intensity_csv is None):
            raise PydanticCustomError("carbon", "give g_per_kwh or intensity_csv (one of them)")
        key = changed(self, "period_s", "offset_s") if self.g_per_kwh is not None else None
        if key:
            raise unread(key, "places an intensity_csv series in time; a constant g_per_kwh has no time axis")
        return self


class SweepSpec(_Strict):
    parameter: str
    values: list[Any] = Field(min_length=1)


class SloSpec(_Strict):
    """Targets for a streaming user: any of TTFT, mean time between tokens, end-to-end latency (s)."""

    ttft_s: float | None = Field(default=None, gt=0)
    tbt_s: float | None = Field(default=None, gt=0)
    latency_s: float | None = Field(default=None, gt=0)
    attainment: float = Field(default=0.9, gt=0, le=1)
    """Share of measured requests that must meet each target for it to count as met."""

    @model_validator(mode="after")
    def _some_target(self) -> SloSpec:
        if not self.targets():
            raise PydanticCustomError("slo", "give at least one target: ttft_s, tbt_s or latency_s")
        return self

    def targets(self) -> dict[str, float]:
        return {
            name: value
            for name, value in (("ttft_s", self.ttft_s), ("tbt_s", self.tbt_s), ("latency_s", self.latency_s))
            if value is not None
        }


class Scenario(_Strict):
    kind: Literal["simulation"]
    name: str | None = None
    description: str | None = None
    seed: int = Field(default=0, ge=0, le=INT64_MAX)
    cluster: dict[str, PoolSpec] = Field(min_length=1)
    cost_model: CostModelSpec = Field(default_factory=CostModelSpec)
    workload: WorkloadSpec | None = None
    max_tokens: int = Field(default=512, ge=1, le=TOKENS_MAX)
    arrival: ArrivalSpec
    predictor: PredictorSpec = Field(default_factory=PredictorSpec)
    policies: list[PolicySpec] = Field(min_length=1)
    slo_s: float | None = Field(default=None, gt=0)
    slo: SloSpec | None = None
    cost: CostSpec = Field(default_factory=CostSpec)
    carbon: CarbonSpec | None = None
    sweep: SweepSpec | None = None
    workers: int | None = Field(default=None, ge=1)
    write_requests: bool = True

    @model_validator(mode="after")
    def _read(self) -> Scenario:
        arrival, workload = self.arrival, self.workload
        counted = "duration_s" if arrival.duration_s is not None else "the trace's rows"
        if (
            workload is not None
            and workload.requests is not None
            and arrival.requests is None
            and (arrival.duration_s is not None or arrival.process == "trace")
        ):
            raise unread(
                "workload.requests",
                f"the arrival decides how many requests come ({counted}); give arrival.requests instead",
            )
        if all(pool.serving == "continuous" for pool in self.cluster.values()):
            if self.cost_model.method != "interpolated":
                raise unread(
                    "cost_model.method",
                    "prices request-level pools; every pool here is serving: continuous, priced from its "
                    "profile's serving tables",
                )
            if self.cost_model.out_of_range == "error":
                raise unread(
                    "cost_model.out_of_range",
                    "'error' refuses requests outside a request-level profile; every pool here is serving: "
                    "continuous, whose passes are clamped to the measured tables (use clamp or extrapolate)",
                )
        return self

    def refuse_unread_by_trace(self, lengths: bool, limits: bool) -> None:
        """Refuse the settings a replayed trace's own columns leave unread (token counts, `max_tokens`); known
        only once the trace file is read."""
        where = f"the trace {self.arrival.trace}"
        if lengths and self.workload is not None:
            raise HybridsimError(
                f"workload: {where} carries each request's token counts; remove the workload"
            )
        if limits and self.max_tokens != Scenario.model_fields["max_tokens"].default:
            raise HybridsimError(
                f"max_tokens: {where} gives each request's limit (max_tokens column); remove it"
            )
