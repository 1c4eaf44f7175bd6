"""Every key of every scenario schema reaches the run: change it from its default and the results change.

A key that a scenario accepts and nothing reads is the worst bug this tool can have: a researcher sets it
and trusts numbers it never shaped (`chunked_prefill: true` once went unread for `serving: continuous`
pools). This test walks every field of the `simulation`, `threshold-sweep` and `plan` schemas (pydantic
`model_fields`, recursively) and asks each key to be either

* PROBED: a tiny scenario runs with and without the change, and the results must differ (a summary with
  the settings' own echoes taken out, the per-threshold or per-candidate tables), or
* ALLOWED: listed with the reason it cannot change results, and where that is checked.

A key added to a schema later with neither fails `test_every_key_is_probed_or_allowed`. Keys that would go
unread in some context (a Poisson stream's `cv`) are refused instead: `test_unread_keys.py`.
"""

from __future__ import annotations

import copy
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from hybridsim.simulator.plan import kind as plan_kind
from hybridsim.simulator.plan.schema import RangeSpec
from hybridsim.simulator.plan.schema import Scenario as PlanScenario
from hybridsim.simulator.report import serving_plots, simulation_plots, threshold_plots
from hybridsim.simulator.scenario.loader import run_scenario
from hybridsim.simulator.scenario.simulation_schema import Scenario as SimulationScenario
from hybridsim.simulator.scenario.threshold_sweep import Scenario as ThresholdScenario
from key_probes import PROBES, TOKENIZER, bases, write_inputs
from pydantic import BaseModel

from hybridsim.core.errors import HybridsimError

# probes set paper fits and extrapolation on purpose; their warnings say what those settings mean
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# -- the keys of a schema ---------------------------------------------------------------------------------


def _models(annotation: Any, inside: bool = False) -> tuple[list[tuple[type[BaseModel], bool]], bool]:
    """The models an annotation holds (each with whether it sits in a list or mapping), and whether a
    plain value (not a model) is accepted too."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, inside)], False
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, dict):
        found, plain = _models(args[-1], True)
        return found, plain or not found
    if origin in (Union, types.UnionType):
        found, plain = [], False
        for arg in args:
            if arg is not type(None):
                models, value = _models(arg, inside)
                found, plain = found + models, plain or value
        return found, plain
    return [], True


def schema_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every key a YAML file may give for `model`, as a dotted path (`*` for a list entry or pool name)."""
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        found, plain = _models(info.annotation)
        if plain:
            yield path
        for sub, inside in found:
            yield from schema_keys(sub, path + (".*." if inside else "."))


KEYS = {
    "simulation": set(schema_keys(SimulationScenario)),
    "threshold-sweep": set(schema_keys(ThresholdScenario)),
    # a `space:` entry may be an integer range, read by its own model inside the validator
    "plan": set(schema_keys(PlanScenario)) | set(schema_keys(RangeSpec, "space.*.")),
}

# -- what may stay unprobed, and why ----------------------------------------------------------------------

ALLOWED = {
    "kind": "selects the schema itself",
    "name": "a label: echoed into summary.json and the headline only",
    "description": "free text: echoed into summary.json only",
    "workers": "parallelism only; results are byte-identical to a serial run (test_worker_processes.py)",
    "workload.tokenizer": "no second tokenizer to compare; its counts are checked in test_user_data.py",
    "execution.backend": "where a plan's runs execute; tables identical (test_plan.py, test_plan_ray.py)",
    "execution.address": "where a plan's runs execute (the Ray cluster); test_plan_ray.py",
    "execution.workers": "parallelism only; test_plan.py::test_tables_do_not_depend_on_the_worker_count",
}


def test_every_key_is_probed_or_allowed() -> None:
    for kind, keys in KEYS.items():
        probes = set(PROBES[kind])
        allowed = {key for key in keys if key in ALLOWED}
        unaccounted = keys - probes - allowed
        assert not unaccounted, (
            f"{kind}: keys with no probe and no reason to be left out: {sorted(unaccounted)}"
        )
        assert not probes - keys, f"{kind}: probes of keys the schema no longer has: {sorted(probes - keys)}"
        assert not probes & allowed, f"{kind}: both probed and allowed: {sorted(probes & allowed)}"


# -- running a tiny scenario ------------------------------------------------------------------------------


def _with_files(value: Any, files: dict[str, Path]) -> Any:
    """`value` with every `@name` replaced by the path of that input file."""
    if isinstance(value, dict):
        return {key: _with_files(item, files) for key, item in value.items()}
    if isinstance(value, str) and value.startswith("@"):
        return str(files[value[1:]])
    return value


def _set(data: dict[str, Any], path: Any, value: Any, files: dict[str, Path]) -> None:
    parts = list(path) if isinstance(path, tuple) else path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    value = _with_files(value, files)
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)


ECHOES = {
    # a setting repeated into the results: a run's own numbers must change, not the echo of what changed
    "params", "predictor", "policy_class", "requests_source", "point", "sweep_value", "lam", "reference",
    "unit", "target_s", "targets", "attainment_target", "warmup_s", "kv_capacity_tokens", "scenario",
    "scenario_file", "description", "seed", "method", "rule", "systems_profiles", "provenance", "notes",
    "headline", "cost_u_normalisation", "out_of_range", "kind", "plots", "name",
}  # fmt: skip


def _without_echoes(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_echoes(item) for key, item in value.items() if key not in ECHOES}
    if isinstance(value, list):
        return [_without_echoes(item) for item in value]
    return value


def _results(kind: str, out: Path, summary: dict[str, Any]) -> str:
    """What a run found, without the echo of its settings."""
    if kind == "simulation":
        return json.dumps(_without_echoes(summary["runs"]), sort_keys=True)
    if kind == "threshold-sweep":
        kept = {key: value for key, value in summary.items() if key != "systems"}
        return (out / "sweep.csv").read_text() + json.dumps(_without_echoes(kept), sort_keys=True)
    return (out / "candidates.csv").read_text() + (out / "runs.csv").read_text()


_CACHE: dict[str, str] = {}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_inputs(tmp_path_factory.mktemp("inputs"))


def _run(
    kind_base: str,
    changes: dict[Any, Any],
    files: dict[str, Path],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    data = copy.deepcopy(bases(files)[kind_base])
    for path, value in changes.items():
        _set(data, path, value, files)
    key = json.dumps(data, sort_keys=True, default=str)
    if key not in _CACHE:
        # the plots draw numbers computed before them; leaving them out keeps this test fast
        monkeypatch.setattr(simulation_plots, "write_plots", lambda summary, out: [])
        monkeypatch.setattr(serving_plots, "power_over_time", lambda summary, out: None)
        monkeypatch.setattr(threshold_plots, "plot_threshold_sweep", lambda *args: None)
        monkeypatch.setattr(plan_kind, "pareto_plot", lambda *args: "pareto.png")
        monkeypatch.setattr(plan_kind, "heatmap", lambda *args: None)
        scenario = folder / f"{len(_CACHE)}.yaml"
        scenario.write_text(json.dumps(data), encoding="utf-8")
        out = folder / f"out-{len(_CACHE)}"
        try:
            _CACHE[key] = _results(data["kind"], out, run_scenario(scenario, out))
        except HybridsimError as error:  # a plan's constraints may leave no candidate feasible: a result too
            if "no feasible candidate" not in str(error):
                raise
            _CACHE[key] = str(error).split(": ", 1)[1]
    return _CACHE[key]


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind, probes in PROBES.items() for key in probes], ids=lambda v: v
)
def test_changing_a_key_changes_the_results(
    kind: str, key: str, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = PROBES[kind][key]
    if str(TOKENIZER) in repr(probe) and not TOKENIZER.is_file():
        pytest.skip("Llama-2 tokenizer (../shared/data/tokenizers/llama2) not present")
    before = _run(probe.base, probe.setup, files, tmp_path, monkeypatch)
    after = _run(probe.base, {**probe.setup, **probe.change}, files, tmp_path, monkeypatch)
    assert after != before, f"{kind}: {key}: changed {probe.change}, yet the results are the same"
