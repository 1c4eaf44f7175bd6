"""Read a scenario YAML, validate it against the schema of its `kind`, and run it.

Each kind (`threshold-sweep`, `simulation`) is a module with a pydantic `Scenario` model and a
`run(scenario, out_dir, scenario_path) -> dict` that writes its files into `out_dir` and returns the
summary. Validation errors name the YAML path of the offending field (`cluster.m1.count: ...`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pydantic
import yaml

from hybridsim.core.atomic import dump_json, staged_directory
from hybridsim.core.errors import HybridsimError

SCENARIO_KINDS: dict[str, str] = {
    "threshold-sweep": "hybridsim.simulator.scenario.threshold_sweep",
    "simulation": "hybridsim.simulator.scenario.simulation",
    "plan": "hybridsim.simulator.plan.kind",
}


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise HybridsimError(f"{path}: scenario file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise HybridsimError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise HybridsimError(f"{path}: a scenario must be a YAML mapping with a 'kind' key")
    return data


def kind_module(kind: Any, source: str) -> Any:
    if kind not in SCENARIO_KINDS:
        known = ", ".join(sorted(SCENARIO_KINDS))
        raise HybridsimError(f"{source}: kind: unknown scenario kind {kind!r} (known: {known})")
    return importlib.import_module(SCENARIO_KINDS[kind])


def format_validation_error(error: pydantic.ValidationError, source: str) -> str:
    """The first problem, as `source: yaml.path: message` on one line."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    extra = f" (and {len(error.errors()) - 1} more problems)" if len(error.errors()) > 1 else ""
    return f"{source}: {location}: {message}{extra}"


def validate(model: type[pydantic.BaseModel], data: dict[str, Any], source: str) -> Any:
    """`data` as a `model`; relative paths a validator reads (profile directories) resolve against the
    scenario file's folder, `source`'s parent."""
    try:
        return model.model_validate(data, context={"base_dir": Path(source).resolve().parent})
    except pydantic.ValidationError as error:
        raise HybridsimError(format_validation_error(error, source)) from None


def load_scenario(path: Path) -> tuple[Any, Any]:
    """Return (kind module, validated scenario)."""
    data = read_yaml(path)
    module = kind_module(data.get("kind"), str(path))
    return module, validate(module.Scenario, data, str(path))


def run_scenario(path: Path, out_dir: Path, overwrite: bool = True, **overrides: Any) -> dict[str, Any]:
    """Validate, run and write a scenario's results atomically into `out_dir`."""
    path = Path(path)
    data = read_yaml(path)
    execution = overrides.pop("execution", None) or {}
    data.update({key: value for key, value in overrides.items() if value is not None})
    module = kind_module(data.get("kind"), str(path))
    if execution:
        if data.get("kind") != "plan":
            option = "--" + next(iter(execution))
            raise HybridsimError(f"{option}: only a 'plan' scenario runs on a backend; {path} is not one")
        data["execution"] = {**(data.get("execution") or {}), **execution}
    scenario = validate(module.Scenario, data, str(path))
    with staged_directory(Path(out_dir), overwrite=overwrite) as staging:
        (staging / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        summary = module.run(scenario, staging, scenario_path=path)
        (staging / "summary.json").write_text(dump_json(summary), encoding="utf-8")
    return summary
