"""How fast are batched iterations priced? Seconds to price 10^6 decode iterations (and prefill passes).

A continuous-batching simulation prices one pass per iteration: a day of a busy replica is millions of
decode iterations. Here 10^6 random (batch size, context tokens) pairs inside the measured range of a
built-in serving profile are priced in one vectorised call of its serving cost model (time, CPU and GPU
energy), and the same for prefill passes; also the cost per call when the simulator prices one iteration
at a time (a scalar call), which is what an event loop that does not batch its pricing pays.

    python benchmarks/serving_costs.py
    python benchmarks/serving_costs.py --profile splitwise-h100/bloom-176b-tp8 --passes 1000000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model


def best_of(repeats: int, run: object) -> float:
    """The fastest of `repeats` timings of `run()` (s): the machine's noise only ever adds time."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="splitwise-a100/llama2-70b-tp8")
    parser.add_argument("--passes", type=int, default=1_000_000)
    parser.add_argument("--scalar-calls", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    profile = load_profile(args.profile)
    model = build_serving_cost_model(profile)
    assert profile.serving is not None
    rng = np.random.default_rng(args.seed)
    results: dict[str, object] = {"profile": args.profile, "passes": args.passes}
    for table, tokens, price in (
        ("decode", "context_tokens", model.decode),
        ("prefill", "prompt_tokens", model.prefill),
    ):
        rows = getattr(profile.serving, table)
        low_b, high_b = int(rows["batch_size"].min()), int(rows["batch_size"].max())
        low_t, high_t = int(rows[tokens].min()), int(rows[tokens].max())
        batch = rng.integers(low_b, high_b + 1, args.passes)
        count = rng.integers(np.maximum(low_t, batch), high_t + 1)
        seconds = best_of(3, lambda price=price, batch=batch, count=count: price(batch, count))
        cost = price(batch, count)
        assert np.isfinite(cost.time_s).all() and (cost.energy_j >= 0).all()
        scalar = best_of(
            1,
            lambda price=price, batch=batch, count=count: [
                price(int(b), int(t))
                for b, t in zip(batch[: args.scalar_calls], count[: args.scalar_calls], strict=True)
            ],
        )
        results[table] = {
            "vectorised_s": round(seconds, 4),
            "ns_per_pass": round(1e9 * seconds / args.passes, 1),
            "scalar_us_per_call": round(1e6 * scalar / args.scalar_calls, 1),
            "mean_time_s": round(float(cost.time_s.mean()), 6),
            "mean_energy_j": round(float(cost.energy_j.mean()), 3),
        }
        print(
            f"{table:8s} {args.passes:,} passes of {args.profile}: {seconds:.3f} s vectorised "
            f"({1e9 * seconds / args.passes:.0f} ns per pass); one at a time: "
            f"{1e6 * scalar / args.scalar_calls:.0f} us per call"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
