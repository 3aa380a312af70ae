"""``lab bench``: a small real run; checks the results' structure, never the numbers."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from lab import bench
from lab.bench_cluster import CLUSTER_FIRST_UP, CLUSTER_SECOND_UP
from lab.bench_compare import compare, read_results
from lab.bench_measurement import Measurement
from lab.bench_transfer import KIT_RATIO, RATIO_GOALS, compare_sides
from lab.cli import build_parser, main
from lab.config import LabConfig
from lab.invocation import lab_command
from lab.progress import Progress
from tests.conftest import make_config


def check_structure(data: dict[str, object]) -> dict[str, dict[str, object]]:
    """Every result has its fields; a skipped one carries a one-line reason and no numbers."""
    assert {"machine", "settings", "results"} <= set(data)
    results = data["results"]
    assert isinstance(results, list)
    by_name = {}
    for result in results:
        assert {"name", "samples", "unit", "skipped", "extra", "min", "median"} <= set(result)
        if result["skipped"]:
            assert result["skipped"].strip() and "\n" not in result["skipped"]
            assert result["samples"] == [] and result["min"] is None and result["median"] is None
        else:
            assert result["samples"] and result["min"] <= result["median"]
        by_name[result["name"]] = result
    return by_name


def test_small_run_writes_results(lab_config: LabConfig, tmp_path: Path) -> None:
    only = ("warm-up", "transfer", "doctor", "status", "serving")
    results = bench.run_bench(
        lab_config, Progress(quiet=True), repeat=1, sizes=(1,), requests_count=20, only=only
    )
    path = bench.write_results(results, tmp_path / "results.json", {"repeat": 1})
    by_name = check_structure(json.loads(path.read_text()))
    assert set(by_name) == {
        "warm up (healthy lab)",
        "status (lab status, auto mode)",
        "lab push+unpack 1 MiB",
        "raw kit pack+push+unpack 1 MiB",
        "cp 1 MiB (floor)",
        "doctor (lab doctor --mode local)",
        "served V1 predict",
        "served V2 infer",
        "direct model.predict",
    }
    # What needs no unobtainable tool runs for real.
    for name in (
        "cp 1 MiB (floor)",
        "doctor (lab doctor --mode local)",
        "status (lab status, auto mode)",
        "served V1 predict",
        "direct model.predict",
    ):
        assert not by_name[name]["skipped"], by_name[name]["skipped"]
    assert "MiB/s" in by_name["cp 1 MiB (floor)"]["extra"]
    assert by_name["doctor (lab doctor --mode local)"]["extra"]["exit code"] in (0, 1)
    for name in ("served V1 predict", "served V2 infer"):
        assert len(by_name[name]["samples"]) == 20
        served = by_name[name]
        assert {"p50", "p99", "req/s", "served/direct p50", bench.OVER_DIRECT} <= set(served["extra"])
        # The goal is on what serving adds to the model's own predict, not on the whole request.
        over = served["median"] - by_name["direct model.predict"]["median"]
        assert served["headline"] == pytest.approx(over) == served["extra"][bench.OVER_DIRECT]
        assert (served["goal"], served["goal_met"]) == (1.0, over <= 1.0)
    for name, goal in (("doctor (lab doctor --mode local)", 0.2), ("status (lab status, auto mode)", 0.3)):
        row = by_name[name]
        assert (row["goal"], row["headline"], row["goal_met"]) == (goal, row["median"], row["median"] <= goal)
    assert by_name["cp 1 MiB (floor)"]["goal"] is None and by_name["cp 1 MiB (floor)"]["goal_met"] is None
    lab_transfer = by_name["lab push+unpack 1 MiB"]
    if not lab_transfer["skipped"]:
        assert "lab/cp" in lab_transfer["extra"]
        assert {"unpack: layers s", "push: upload s"} <= set(lab_transfer["extra"])
    assert not (lab_config.home / "bench").exists(), "generated files are deleted"
    # The rounds pushed to a registry of the bench's own: nothing of them fills the lab's.
    pushed_to_the_lab = list(lab_config.data_dir.glob("**/repositories/bench"))
    assert pushed_to_the_lab == [], "the lab's registry holds the bench's pushes"
    table = bench.markdown(results)
    assert table.splitlines()[0] == "| measurement | min | median | goal | notes |"
    assert len(table.splitlines()) == 2 + len(results)
    status_line = next(line for line in table.splitlines() if line.startswith("| status (lab status"))
    met = by_name["status (lab status, auto mode)"]["goal_met"]
    assert ("≤ 0.3 s: met" in status_line) == met
    assert any("over direct p50 ≤ 1 ms" in line for line in table.splitlines() if "served V1" in line)


def test_cli_only_and_output(
    lab_config: LabConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAB_HOME", str(lab_config.home))
    monkeypatch.setenv("LAB_REGISTRY_PORT", str(lab_config.ports.registry))
    output = tmp_path / "out" / "results.json"
    argv = ["-q", "bench", "--only", "transfer", "--sizes", "1", "--repeat", "1", "--output", str(output)]
    assert main(argv) == 0
    by_name = check_structure(json.loads(output.read_text()))
    assert set(by_name) == {"lab push+unpack 1 MiB", "raw kit pack+push+unpack 1 MiB", "cp 1 MiB (floor)"}
    assert "| cp 1 MiB (floor) |" in capsys.readouterr().out


def test_compare_prints_each_row_against_an_earlier_run(
    lab_config: LabConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAB_HOME", str(lab_config.home))
    monkeypatch.setenv("LAB_REGISTRY_PORT", str(lab_config.ports.registry))
    earlier, now = tmp_path / "earlier.json", tmp_path / "now.json"
    run = ["-q", "bench", "--only", "transfer", "--sizes", "1", "--repeat", "1"]
    assert main([*run, "--output", str(earlier)]) == 0
    capsys.readouterr()
    assert main([*run, "--output", str(now), "--compare", str(earlier)]) == 0
    printed = capsys.readouterr().out
    before = {r["name"]: r for r in json.loads(earlier.read_text())["results"]}
    after = {r["name"]: r for r in json.loads(now.read_text())["results"]}
    line = next(line for line in printed.splitlines() if line.startswith("| cp 1 MiB (floor) | median |"))
    ratio = after["cp 1 MiB (floor)"]["median"] / before["cp 1 MiB (floor)"]["median"]
    assert line.endswith(f"| {ratio:.2f}× |")
    assert f"| measurement (vs {earlier}) |" in printed


def test_compare_on_the_goal_figure_and_rows_on_one_side(lab_config: LabConfig, tmp_path: Path) -> None:
    results = bench.run_bench(
        lab_config, Progress(quiet=True), repeat=1, requests_count=10, only=("serving",)
    )
    earlier = bench.write_results(results, tmp_path / "earlier.json")
    now = bench.write_results(results[:1], tmp_path / "now.json")
    rows = {r.name: r for r in compare(read_results(earlier), read_results(now))}
    served = rows["served V1 predict"]
    # The same run on both sides: the goal's figure (over direct, in ms) and a ratio of exactly 1.
    assert (served.figure, served.unit, served.ratio) == (bench.OVER_DIRECT, "ms", 1.0)
    assert served.now == results[0].extra[bench.OVER_DIRECT]
    gone = rows["direct model.predict"]
    assert (gone.now, gone.ratio, gone.note) == (None, None, "not in this run")
    # A file from before goals existed (no headline figure) is compared on the median.
    old = json.loads(earlier.read_text())
    for row in old["results"]:
        row["extra"].pop(bench.OVER_DIRECT, None)
    earlier.write_text(json.dumps(old))
    assert compare(read_results(earlier), read_results(now))[0].figure == "median"


def test_compare_refuses_a_file_that_is_not_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "notes.json"
    wrong.write_text('{"results": "none"}')
    for path in (wrong, tmp_path / "missing.json"):
        assert main(["-q", "bench", "--only", "status", "--compare", str(path)]) == 2
        error = capsys.readouterr().err
        assert error.startswith("ERROR:") and str(path) in error


def test_cluster_rows_without_the_control_plane_tools_are_skipped_with_their_goals(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)  # none of the control-plane tools
    config = make_config(home)
    results = bench.run_bench(config, Progress(quiet=True), repeat=1, only=("cluster",))
    assert [m.name for m in results] == [CLUSTER_FIRST_UP, CLUSTER_SECOND_UP]
    for measurement, goal in zip(results, (30.0, 5.0), strict=True):
        assert "is not installed" in measurement.skipped
        assert lab_command("tools install --mode cluster") in measurement.skipped
        assert (measurement.goal, measurement.goal_met) == (goal, None)
        assert bench.goal_cell(measurement) == f"≤ {goal:g} s: not measured"


def test_the_transfer_goal_is_on_the_ratio_to_raw_kit(tmp_path: Path) -> None:
    # Without kit the 100 MiB row is skipped and still names its goal; measured, the goal is
    # judged on the lab/kit ratio of medians, not on seconds.
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    results = bench.run_bench(
        make_config(home), Progress(quiet=True), repeat=1, sizes=(100,), only=("transfer",)
    )
    lab = results[0]
    assert (lab.name, lab.goal, lab.goal_met) == ("lab push+unpack 100 MiB", 1.25, None)
    assert "kit" in lab.skipped and bench.goal_cell(lab) == "lab/kit ≤ 1.25 ×: not measured"
    for lab_seconds, met in (([0.44, 0.42, 0.43], True), ([0.50, 0.48, 0.52], False)):
        lab = Measurement(
            "lab push+unpack 1024 MiB", lab_seconds, goal=RATIO_GOALS[1024], headline_of=KIT_RATIO
        )
        compare_sides(lab, Measurement("raw", [0.40, 0.38, 0.36]), Measurement("cp", [0.02, 0.03, 0.025]))
        ratio = statistics.median(lab_seconds) / 0.38
        assert lab.extra[KIT_RATIO] == pytest.approx(ratio) and lab.headline == pytest.approx(ratio)
        assert lab.extra[f"{KIT_RATIO} (min)"] == pytest.approx(min(lab_seconds) / 0.36)
        assert lab.goal_met is met is (ratio <= 1.15)
        assert bench.goal_cell(lab) == "lab/kit ≤ 1.15 ×: " + ("met" if met else f"{ratio:.3f} ×, not met")


def test_cli_rejects_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--only", "demo,nope"])
    assert "choose from demo,warm-up,transfer,doctor,status,serving,cluster" in capsys.readouterr().err
    args = build_parser().parse_args(["bench"])
    assert (args.repeat, args.sizes, args.requests, args.only) == (3, (100, 1024), 200, bench.BENCHMARKS)
