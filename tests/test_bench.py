"""``lab bench``: a small real run; checks the results' structure, never the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import bench
from lab.cli import build_parser, main
from lab.config import LabConfig
from lab.progress import Progress


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
    only = ("warm-up", "transfer", "doctor", "serving")
    results = bench.run_bench(
        lab_config, Progress(quiet=True), repeat=1, sizes=(1,), requests_count=20, only=only
    )
    path = bench.write_results(results, tmp_path / "results.json", {"repeat": 1})
    by_name = check_structure(json.loads(path.read_text()))
    assert set(by_name) == {
        "warm up (healthy lab)",
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
        "served V1 predict",
        "direct model.predict",
    ):
        assert not by_name[name]["skipped"], by_name[name]["skipped"]
    assert "MiB/s" in by_name["cp 1 MiB (floor)"]["extra"]
    assert by_name["doctor (lab doctor --mode local)"]["extra"]["exit code"] in (0, 1)
    for name in ("served V1 predict", "served V2 infer"):
        assert len(by_name[name]["samples"]) == 20
        assert {"p50", "p99", "req/s", "served/direct p50"} <= set(by_name[name]["extra"])
    lab_transfer = by_name["lab push+unpack 1 MiB"]
    if not lab_transfer["skipped"]:
        assert "lab/cp" in lab_transfer["extra"]
        assert {"unpack: layers s", "push: upload s"} <= set(lab_transfer["extra"])
    assert not (lab_config.home / "bench").exists(), "generated files are deleted"
    table = bench.markdown(results)
    assert table.splitlines()[0].startswith("| measurement |")
    assert len(table.splitlines()) == 2 + len(results)


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


def test_cli_rejects_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--only", "demo,nope"])
    assert "choose from demo,warm-up,transfer,doctor,serving" in capsys.readouterr().err
    args = build_parser().parse_args(["bench"])
    assert (args.repeat, args.sizes, args.requests, args.only) == (3, (100, 1024), 200, bench.BENCHMARKS)
