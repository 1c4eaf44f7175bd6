"""`serving: continuous` pools of a simulation scenario: from the YAML to a configured batching pool.

    cluster:
      a100:
        profile: splitwise-a100/llama2-70b-tp8   # needs serving tables
        count: 4
        serving: continuous
        max_num_seqs: 128                 # running batch (vLLM's names)
        max_num_batched_tokens: 8192      # tokens one pass may process
        kv_capacity_tokens: 200000        # optional: default the serving tables'
        chunked_prefill: true             # optional: prompt chunks ride along with the decodes

Checked before anything runs, each failure one line naming the YAML path: a profile without serving
tables, a KV cache too small to hold the largest request (prompt + answer, plus the scheduler's
watermark), a token budget below the longest prompt (no pass could ever read it) or, with chunked
prefill, below `max_num_seqs` (a full batch's decodes would not fit in one iteration: vLLM's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_model import Profile

from ..arrivals import RequestStream
from ..cluster import PoolSetup, PowerCap
from ..cluster.continuous_node import KV_WATERMARK, ContinuousSetup, ServingLimits
from ..engine import PoolConfig
from ..profiles.iteration_pricing import ServedAlone
from ..profiles.serving_costs import build_serving_cost_model


def continuous_config(name: str, spec: Any, profile: Profile, out_of_range: str) -> PoolConfig:
    """The engine's view of a `serving: continuous` pool (spec: the pool's `PoolSpec`)."""
    where = f"cluster.{name}"
    if profile.serving is None:
        raise HybridsimError(
            f"{where}.serving: continuous needs a profile with serving tables; {spec.profile} has none "
            "(use a built-in serving profile such as splitwise-a100/llama2-70b-tp8, or serving: request)"
        )
    idle = spec.idle_power_w
    if idle is None:
        idle = (
            profile.serving.idle_power_w
            if profile.serving.idle_power_w is not None
            else profile.metadata.idle_power_w
        )
    if idle is None:
        raise HybridsimError(f"{where}.idle_power_w: profile {spec.profile} has no idle power; set one")
    # 'error' is enforced per request for request-level pools; a batching pool's passes are clamped to the
    # measured batch sizes and token counts (the summary says so)
    try:
        model = build_serving_cost_model(profile, "clamp" if out_of_range == "error" else out_of_range)
    except HybridsimError as error:
        raise HybridsimError(f"{where}.profile: {error}") from None
    cap = (
        PowerCap(spec.power_cap.runtime_factor, spec.power_cap.power_factor) if spec.power_cap else PowerCap()
    )
    if spec.chunked_prefill and spec.max_num_batched_tokens < spec.max_num_seqs:
        # vLLM's rule too: every running request decodes one token inside each iteration's budget
        raise HybridsimError(
            f"{where}.max_num_batched_tokens: {spec.max_num_batched_tokens} tokens per iteration cannot "
            f"hold the decodes of max_num_seqs {spec.max_num_seqs} running requests with chunked_prefill; "
            "raise it to at least max_num_seqs"
        )
    limits = ServingLimits(
        spec.max_num_seqs, spec.max_num_batched_tokens, spec.chunked_prefill, spec.kv_capacity_tokens or 0
    )
    setup = PoolSetup(name, spec.count, float(idle), "fifo", serving=ContinuousSetup(model, limits, cap))
    return PoolConfig(setup, ServedAlone(model), cap, False, spec.profile)


def check_continuous(configs: Sequence[PoolConfig], stream: RequestStream) -> None:
    """Refuse batching pools that could never serve some request of the run (one line naming the YAML key)."""
    if not any(config.setup.serving for config in configs):
        return
    m = np.asarray(stream.input_tokens, dtype=np.int64)
    n = np.asarray(stream.output_tokens, dtype=np.int64)
    largest = int(np.argmax(m + n))
    longest_prompt = int(m.max())
    for config in configs:
        serving = config.setup.serving
        if serving is None or config.setup.count == 0:
            continue
        where = f"cluster.{config.setup.name}"
        capacity = serving.kv_capacity
        need = int(m[largest] + n[largest]) + 1 + int(KV_WATERMARK * capacity)
        if need > capacity:
            key = "kv_capacity_tokens" if serving.limits.kv_capacity_tokens else "profile"
            raise HybridsimError(
                f"{where}.{key}: a KV cache of {capacity} tokens cannot hold request {largest} "
                f"({m[largest]} prompt + {n[largest]} answer tokens, {need} with the scheduler's headroom)"
            )
        if not serving.limits.chunked_prefill and longest_prompt > serving.limits.max_num_batched_tokens:
            raise HybridsimError(
                f"{where}.max_num_batched_tokens: {serving.limits.max_num_batched_tokens} tokens per pass "
                f"cannot read the longest prompt ({longest_prompt} tokens); no pass could ever admit it"
            )
