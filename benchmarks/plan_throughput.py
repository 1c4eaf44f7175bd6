"""How many candidates a plan simulates per minute, locally and on Ray with 1 and 2 workers.

    python benchmarks/plan_throughput.py                       # 32 candidates x 10k requests, all backends
    python benchmarks/plan_throughput.py --candidates 64 --backends local

The candidates are scenarios/plan-hybrid.yaml's (the default datacenter's load, 10,000 requests each, one
seed): Optuna's first batch, which is a uniform random draw from the 1,092-candidate space, so the mix of
cluster sizes and routers is the plan's own. The time of a 1,000-candidate plan is extrapolated from the
measured rate (the runs are independent, so the rate does not depend on how many there are). Ray times
include starting a local Ray instance with that many CPUs; "ray-N" is N worker processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hybridsim.simulator.scenario.loader import run_scenario  # noqa: E402


def plan_file(folder: Path, candidates: int, backend: str, workers: int) -> Path:
    plan = yaml.safe_load((ROOT / "scenarios" / "plan-hybrid.yaml").read_text(encoding="utf-8"))
    plan["base"] = str(ROOT / "scenarios" / "default.yaml")
    plan["seeds"] = 1
    plan["search"] = {"method": "optuna", "trials": candidates, "batch": candidates, "seed": 0}
    plan["execution"] = {"backend": backend, "workers": workers}
    plan["constraints"] = []  # every candidate counts; feasibility does not change the work
    plan["no_saturation"] = False
    path = folder / f"plan-{backend}-{workers}.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def measure(candidates: int, backend: str, workers: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = plan_file(Path(folder), candidates, backend, workers)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = run_scenario(path, Path(folder) / "out")
        return summary["search"]["evaluated"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--backends", default="local,ray-1,ray-2")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    print(f"plan-hybrid candidates, 10,000 requests each, 1 seed; {cpus} CPUs on this machine")
    print(f"{'backend':<10} {'candidates':>10} {'wall (s)':>9} {'per minute':>11} {'1,000 candidates':>17}")
    for name in args.backends.split(","):
        backend, _, count = name.partition("-")
        workers = int(count) if count else cpus
        label = name if count else f"local-{workers}"
        evaluated, wall = measure(args.candidates, backend, workers)
        rate = evaluated / wall * 60
        print(f"{label:<10} {evaluated:>10} {wall:>9.1f} {rate:>11.1f} {1000 / rate:>13.1f} min")


if __name__ == "__main__":
    main()
