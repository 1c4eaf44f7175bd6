"""The layers of docs/architecture.md hold: no module imports one of a higher layer, siblings stay apart.

Read from the source with `ast` (every import counts: at module level, inside functions, under
TYPE_CHECKING), so the check needs no install and sees the folders exactly as setup.py maps them into the
`hybridsim` namespace. import-linter would be the usual tool, but it builds its graph from one package
directory, and ours spans three folders (hybridsim/, simulator/, calibration/).

A layer is a list of siblings, lowest layer first: a module may import its own sibling's insides, any
lower layer, never a higher layer, never another sibling of its layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "hybridsim": "hybridsim",
    "hybridsim.simulator": "simulator",
    "hybridsim.calibration": "calibration",
}
"""Import name -> repository folder (as setup.py maps them)."""

PACKAGE_LAYERS: list[list[str]] = [
    ["hybridsim.core"],
    ["hybridsim.calibration", "hybridsim.simulator"],
    ["hybridsim.cli"],
    ["hybridsim.__main__"],
]
"""The installed package, low -> high: the neutral core; the two halves, which never import each other; the
command (`python -m hybridsim` above it)."""

SIMULATOR_LAYERS: list[list[str]] = [
    ["energy"],
    ["profiles"],
    ["analysis", "workload", "arrivals", "predictors"],
    ["request"],
    ["cluster"],
    ["policies", "metrics"],
    ["engine"],
    ["report"],
    ["scenario"],
    ["plan"],
    ["cli"],
]
"""The simulator, low -> high, in the order its data flows (docs/architecture.md, "Layers")."""


def _modules() -> dict[str, Path]:
    """Every module of the namespace -> its file."""
    found: dict[str, Path] = {}
    for name, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([name, *parts])] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path, runtime_only: bool = False) -> Iterator[tuple[str, int]]:
    """(imported module of the namespace, line) for every import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name in MODULES:
                yield name, node.lineno


def _layer_of(module: str, layers: list[list[str]], prefix: str) -> tuple[int, str] | None:
    for position, siblings in enumerate(layers):
        for sibling in siblings:
            full = f"{prefix}{sibling}"
            if module == full or module.startswith(full + "."):
                return position, full
    return None


def _violations(layers: list[list[str]], prefix: str = "") -> list[str]:
    found = []
    for module, path in MODULES.items():
        mine = _layer_of(module, layers, prefix)
        if mine is None:
            continue
        for target, line in _imports(module, path):
            theirs = _layer_of(target, layers, prefix)
            if theirs is None or theirs[1] == mine[1]:
                continue
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            where = f"{shown}:{line}: {module} imports {target}"
            if theirs[0] > mine[0]:
                found.append(f"{where} (a higher layer)")
            elif theirs[0] == mine[0]:
                found.append(f"{where} (a sibling of the same layer)")
    return found


@pytest.mark.parametrize(
    ("layers", "prefix"),
    [(PACKAGE_LAYERS, ""), (SIMULATOR_LAYERS, "hybridsim.simulator.")],
    ids=["package", "simulator"],
)
def test_no_layer_imports_a_higher_one_or_a_sibling(layers: list[list[str]], prefix: str) -> None:
    assert _violations(layers, prefix) == []


def test_every_simulator_module_has_a_layer() -> None:
    """A new sub-package must be placed in SIMULATOR_LAYERS (and in docs/architecture.md) to be checked."""
    unplaced = [
        module
        for module in MODULES
        if module.startswith("hybridsim.simulator.")
        and _layer_of(module, SIMULATOR_LAYERS, "hybridsim.simulator.") is None
    ]
    assert unplaced == []


KNOWN_BACK_EDGES: set[tuple[str, str]] = set()
"""Imports that close a cycle, known and not yet mended (remove each here when it is). None now: the option
helpers `calibrate --serving` borrowed from `cli.py` live in `cli_options.py` and `cli_out_dir.py`, below
both commands, and `HEADROOM_FRACTION` lives where it is used (`cli_serving_run.py`)."""


def test_no_import_cycles_at_run_time() -> None:
    """No module reaches itself through imports executed at run time (type-only imports may point back)."""
    graph = {
        module: {target for target, _ in _imports(module, path, runtime_only=True) if target != module}
        for module, path in MODULES.items()
    }
    # A package's __init__ importing its own modules, and those importing names from the package, is no cycle.
    for module, targets in graph.items():
        targets -= {parent for parent in targets if module.startswith(parent + ".")}
        targets -= {target for target in targets if (module, target) in KNOWN_BACK_EDGES}
    cycles, state = [], dict.fromkeys(graph, 0)

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state[target] == 1:
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif state[target] == 0:
                visit(target, [*trail, target])
        state[module] = 2

    for module in graph:
        if state[module] == 0:
            visit(module, [module])
    assert cycles == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an import from a lower layer into a higher one is reported."""
    assert _layer_of("hybridsim.simulator.cluster.pool", SIMULATOR_LAYERS, "hybridsim.simulator.") == (
        4,
        "hybridsim.simulator.cluster",
    )
    fake = tmp_path / "pool.py"
    fake.write_text("from ..engine import simulate\nfrom ..request import Request\n")
    MODULES["hybridsim.simulator.cluster.fake_pool"] = fake
    try:
        found = _violations(SIMULATOR_LAYERS, "hybridsim.simulator.")
    finally:
        del MODULES["hybridsim.simulator.cluster.fake_pool"]
    assert found == [
        f"{fake}:1: hybridsim.simulator.cluster.fake_pool imports hybridsim.simulator.engine (a higher layer)"
    ]
