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

from hybridsim.core.atomic import staged_directory
from hybridsim.core.errors import HybridsimError
from hybridsim.core.jsonstyle import dump_json
from hybridsim.core.limits import INT64_MAX
from hybridsim.core.yaml_safe import first_unusable_number, load_yaml_text

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
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise HybridsimError(f"{path}: not a UTF-8 text file (a scenario is YAML text)") from None
    except RecursionError:
        raise HybridsimError(f"{path}: malformed YAML: nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise HybridsimError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise HybridsimError(f"{path}: a scenario must be a YAML mapping with a 'kind' key")
    check_numbers(data, str(path))
    return data


def check_numbers(data: dict[str, Any], source: str) -> None:
    """Refuse NaN, infinities and integers beyond int64 anywhere in a scenario: none can be simulated."""
    found = first_unusable_number(data)
    if found is not None:
        where, value = found
        what = (
            "is not a finite number" if isinstance(value, float) else f"is beyond int64 (limit {INT64_MAX:,})"
        )
        raise HybridsimError(f"{source}: {where}: {value!r} {what}")


def kind_module(kind: Any, source: str) -> Any:
    if not isinstance(kind, str) or kind not in SCENARIO_KINDS:
        known = ", ".join(sorted(SCENARIO_KINDS))
        raise HybridsimError(f"{source}: kind: unknown scenario kind {kind!r} (known: {known})")
    return importlib.import_module(SCENARIO_KINDS[kind])


def format_validation_error(error: pydantic.ValidationError, source: str) -> str:
    """The first problem, as `source: yaml.path: message` on one line."""
    first = error.errors()[0]
    # a cross-field rule names the key it refuses in its context (`unread` in the simulation schema)
    key = (first.get("ctx") or {}).get("yaml_key")
    location = ".".join([*(str(part) for part in first["loc"]), *([key] if key else [])]) or "(top level)"
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


def run_scenario(
    path: Path, out_dir: Path, replace: bool = True, overwrite: bool = False, **overrides: Any
) -> dict[str, Any]:
    """Validate, run and write a scenario's results atomically into `out_dir` (rules: `staged_directory`)."""
    path = Path(path)
    data = read_yaml(path)
    execution = overrides.pop("execution", None) or {}
    data.update({key: value for key, value in overrides.items() if value is not None})
    check_numbers(data, str(path))
    module = kind_module(data.get("kind"), str(path))
    if execution:
        if data.get("kind") != "plan":
            option = "--" + next(iter(execution))
            raise HybridsimError(f"{option}: only a 'plan' scenario runs on a backend; {path} is not one")
        data["execution"] = {**(data.get("execution") or {}), **execution}
    scenario = validate(module.Scenario, data, str(path))
    with staged_directory(Path(out_dir), "run", replace=replace, overwrite=overwrite) as staging:
        (staging / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        summary = module.run(scenario, staging, scenario_path=path)
        overflow = first_unusable_number(summary)
        if overflow is not None:  # e.g. an idle power of 1e308 W: the energy sums overflow to inf
            raise HybridsimError(
                f"{path}: the results overflow ({overflow[0]} is {overflow[1]!r}); the scenario's numbers "
                "are out of scale (powers, rates, growth factors)"
            )
        (staging / "summary.json").write_text(dump_json(summary), encoding="utf-8")
    return summary
