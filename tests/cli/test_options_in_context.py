"""An option is refused where it would be ignored, and does what it says where it is accepted.

`--overwrite` of `compare`, `profiles show` and `workload show` acts on the --out folder or --plot file;
without one it has nothing to act on. `run --no-overwrite` with `--overwrite` would be overruled by it.
`run --seed` (or `seed:`) of a threshold sweep draws its `workload.requests`; without them every record is
priced once, and the totals do not depend on the order.
Each is one line naming the option, exit code 2, and no file written; with what it acts on, each works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_output_folders import in_process, snapshot, workspace  # noqa: F401 - `workspace` is a fixture

from hybridsim.core.errors import HybridsimError


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("run", "s.yaml", "--out", "r", "--overwrite", "--no-overwrite"),
            "--no-overwrite: contradicts --overwrite",
        ),
        (("compare", "r", "--overwrite"), "--overwrite: applies to an --out folder"),
        (("profiles", "show", "m1-pro/llama2-7b", "--overwrite"), "--overwrite: applies to a --plot file"),
        (("workload", "show", "alpaca", "--overwrite"), "--overwrite: applies to a --plot file"),
    ],
)
def test_an_option_with_nothing_to_act_on_is_refused(
    workspace: Path,  # noqa: F811
    args: tuple[str, ...],
    message: str,
) -> None:
    before = snapshot(workspace)
    done = in_process(*args, cwd=workspace)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {message}"), done.stderr
    assert done.stdout == "" and snapshot(workspace) == before


def test_no_overwrite_keeps_a_previous_run(workspace: Path) -> None:  # noqa: F811
    assert in_process("run", "s.yaml", "--out", "r", cwd=workspace).returncode == 0
    before = snapshot(workspace / "r")
    done = in_process("run", "s.yaml", "--out", "r", "--seed", "9", "--no-overwrite", cwd=workspace)
    assert done.returncode == 2 and "(--no-overwrite)" in done.stderr
    assert snapshot(workspace / "r") == before
    assert in_process("run", "s.yaml", "--out", "r", "--seed", "9", cwd=workspace).returncode == 0
    assert snapshot(workspace / "r") != before  # without it, the run is hybridsim's to replace


def test_compare_overwrite_writes_beside_the_users_files(workspace: Path) -> None:  # noqa: F811
    assert in_process("run", "s.yaml", "--out", "r", cwd=workspace).returncode == 0
    (workspace / "papers").mkdir()
    (workspace / "papers" / "notes.txt").write_text("mine\n")
    assert in_process("compare", "r", "--out", "papers", cwd=workspace).returncode == 2
    done = in_process("compare", "r", "--out", "papers", "--overwrite", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert (workspace / "papers" / "compare.csv").is_file()
    assert (workspace / "papers" / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("words", [("profiles", "show", "m1-pro/llama2-7b"), ("workload", "show", "alpaca")])
def test_overwrite_replaces_the_plot_file(workspace: Path, words: tuple[str, ...]) -> None:  # noqa: F811
    (workspace / "fig.png").write_bytes(b"an old figure")
    assert in_process(*words, "--plot", "fig.png", cwd=workspace).returncode == 2
    done = in_process(*words, "--plot", "fig.png", "--overwrite", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert (workspace / "fig.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "backend"),
    [
        ((), ("local", None, None)),
        (("--workers", "3"), ("local", None, 3)),
        (("--backend", "ray", "--address", "head:6379", "--workers", "2"), ("ray", "head:6379", 2)),
    ],
)
def test_a_plans_execution_options_reach_its_backend(
    workspace: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    backend: tuple[object, ...],
) -> None:
    plan = {
        "kind": "plan",
        "base": "s.yaml",
        "space": {"arrival.rate": [0.2, 0.3]},
        "search": {"method": "grid"},
    }
    (workspace / "plan.yaml").write_text(yaml.safe_dump(plan))
    asked: list[tuple[object, ...]] = []

    def make_backend(*given: object) -> None:
        asked.append(given)
        raise HybridsimError("stopped here: the backend is what this test checks")

    monkeypatch.setattr("hybridsim.simulator.plan.kind.make_backend", make_backend)
    done = in_process("run", "plan.yaml", "--out", "p", *args, cwd=workspace)
    assert done.returncode == 2 and "stopped here" in done.stderr
    assert asked == [backend] and not (workspace / "p").exists()


THRESHOLD = {
    "kind": "threshold-sweep",
    "systems": {"M1": {"profiles": ["m1-pro/llama2-7b"]}, "A100": {"profiles": ["swing-a100/llama2-7b"]}},
    "workload": {"dataset": "alpaca", "max_input_tokens": 64},
    "method": "per-request",
    "thresholds": [16, 32],
}
"""A small threshold sweep: the prompts of at most 64 tokens, every one priced once."""


def test_a_threshold_sweep_reads_its_seed_only_when_it_draws_requests(workspace: Path) -> None:  # noqa: F811
    (workspace / "t.yaml").write_text(yaml.safe_dump(THRESHOLD))
    for seed_given in (("--seed", "5"), ()):
        if not seed_given:
            (workspace / "t.yaml").write_text(yaml.safe_dump({**THRESHOLD, "seed": 5}))
        done = in_process("run", "t.yaml", "--out", "t", *seed_given, cwd=workspace)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: t.yaml: seed: (or --seed) draws workload.requests"), done.stderr
        assert not (workspace / "t").exists()
    drawn = {**THRESHOLD, "workload": {**THRESHOLD["workload"], "requests": 300}}
    (workspace / "t.yaml").write_text(yaml.safe_dump(drawn))
    sweeps = []
    for seed in ("1", "2"):
        assert in_process("run", "t.yaml", "--out", f"t{seed}", "--seed", seed, cwd=workspace).returncode == 0
        sweeps.append((workspace / f"t{seed}" / "sweep.csv").read_text())
    assert sweeps[0] != sweeps[1]  # other draws, other totals
