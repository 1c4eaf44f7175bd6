"""Finding profiles by name or path, and the `hybridsim profiles` commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CliRun
from hybridsim.simulator.profiles.registry import (
    BUILTIN_DIR,
    list_builtin,
    list_builtin_request_level,
    list_builtin_serving,
    load_profile,
)

from hybridsim.cli import cli
from hybridsim.core.errors import HybridsimError

BUILTINS = [
    f"{system}/{model}"
    for system in ("palmetto-a100", "palmetto-v100", "swing-a100")
    for model in ("falcon-7b", "llama2-7b", "mistral-7b")
]


def test_builtins_are_the_paper_pairs_our_h100_calibrations_and_the_splitwise_serving_tables() -> None:
    calibrated = ["h100/llama2-7b-bf16-kv", "h100/llama2-7b-bf16-nokv"]
    request_level = sorted(["m1-pro/llama2-7b", "m1-pro/mistral-7b", *BUILTINS, *calibrated])
    assert list_builtin_request_level() == request_level
    assert list_builtin() == sorted(request_level + list_builtin_serving())
    derived = {"swing-a100-batched/llama2-7b"}  # simulator/profiles/derived_serving.py, labelled a derivation
    assert all(name.startswith("splitwise-") or name in derived for name in list_builtin_serving())


def test_load_by_name_is_cached_and_by_path_reads_the_directory(tmp_path: Path) -> None:
    assert load_profile("m1-pro/llama2-7b") is load_profile("m1-pro/llama2-7b")
    copy = tmp_path / "my-m1"
    shutil.copytree(BUILTIN_DIR / "m1-pro" / "llama2-7b", copy)
    profile = load_profile(str(copy))
    assert profile.metadata.system == "M1-Pro"
    assert profile.points.equals(load_profile("m1-pro/llama2-7b").points)


def test_unknown_profile_is_one_line_listing_the_builtins() -> None:
    with pytest.raises(HybridsimError) as caught:
        load_profile("m2-ultra/llama2-7b")
    message = str(caught.value)
    assert "\n" not in message and "m2-ultra/llama2-7b" in message and "swing-a100/llama2-7b" in message


def test_profiles_list_shows_every_builtin_with_its_ranges() -> None:
    result = CliRunner().invoke(cli, ["profiles", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "name",
        "system",
        "model",
        "meter",
        "points",
        "input",
        "output",
        "serving",
        "estimated",
    ]
    assert len(lines) == 1 + len(list_builtin())
    m1 = next(line for line in lines if line.split()[0] == "m1-pro/llama2-7b")
    assert "powermetrics" in m1 and "9-2117" in m1 and "8-512" in m1 and m1.split()[-2:] == ["no", "no"]
    served = next(line for line in lines if line.split()[0] == "splitwise-a100/llama2-70b-tp8")
    assert served.split()[-2:] == ["b1-64/tp8", "yes"]


def test_profiles_show_prints_points_and_plots_side_by_side(tmp_path: Path) -> None:
    plot = tmp_path / "figs.png"
    result = CliRunner().invoke(
        cli, ["profiles", "show", "m1-pro/llama2-7b", "swing-a100/llama2-7b", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    assert "== m1-pro/llama2-7b" in result.output and "== swing-a100/llama2-7b" in result.output
    assert "energy scope:" in result.output and "paper fit:" in result.output
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_profiles_show_prints_serving_tables_and_plots_them_beside_request_level_ones(tmp_path: Path) -> None:
    plot = tmp_path / "figs.png"
    names = ["splitwise-a100/llama2-70b-tp8", "splitwise-h100/llama2-70b-tp8", "m1-pro/llama2-7b"]
    result = CliRunner().invoke(cli, ["profiles", "show", *names, "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "prefill passes:" in result.output and "decode iterations:" in result.output
    assert "MODELLED" in result.output and "KV cache 1,475,449 tokens" in result.output
    assert "serving-only" in result.output
    serving_plot = tmp_path / "figs-serving.png"
    for path in (plot, serving_plot):
        assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"


def test_unknown_profile_on_the_command_line_exits_2_with_one_line(hybridsim: CliRun) -> None:
    result = hybridsim("profiles", "show", "nope/none")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: profile 'nope/none'") and result.stderr.count("\n") == 1


def test_plot_to_an_unknown_format_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["profiles", "show", "m1-pro/llama2-7b", "--plot", str(tmp_path / "x.gif")]
    )
    assert isinstance(result.exception, HybridsimError) and ".png or .pdf" in str(result.exception)


def test_a_relative_profile_path_is_read_against_the_scenario_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scenarios"
    shutil.copytree(BUILTIN_DIR / "m1-pro" / "llama2-7b", folder / "mine" / "m1")
    monkeypatch.chdir(tmp_path)  # the working directory is not the scenario's folder
    assert (
        load_profile("mine/m1", base_dir=folder).metadata.system
        == load_profile("m1-pro/llama2-7b").metadata.system
    )
    with pytest.raises(HybridsimError, match="neither a built-in name nor a profile directory"):
        load_profile("mine/m1", base_dir=tmp_path)
    # built-in names stay names, whatever the folder
    assert load_profile("m1-pro/llama2-7b", base_dir=folder).name == "m1-pro/llama2-7b"
