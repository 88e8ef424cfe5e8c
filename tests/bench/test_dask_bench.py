"""bench/dask_bench.py (issue 20's figures), tiny: every contender runs, every result is checked.

Correctness only (timing never goes into tests): these keep the Dask
benchmark from rotting, and its checks honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dask_bench
import pytest

BENCH = Path(__file__).parents[2] / "bench"


def test_no_module_in_bench_shadows_dask() -> None:
    """bench/ is on sys.path (pytest's pythonpath, a script's own folder): a dask.py there would hide Dask."""
    assert not (BENCH / "dask.py").exists()
    assert not (BENCH / "distributed.py").exists()


def test_the_dask_benchmark_runs_every_contender_tiny_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "dask.json"
    ran = subprocess.run(
        [
            sys.executable,
            BENCH / "dask_bench.py",
            "--scale",
            "0.002",  # 4 cpu tasks, 20 tiny, 4 one at a time
            "--repeat",
            "1",
            "--cost",
            "2000",
            "--json",
            out,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert ran.returncode == 0, f"bench/dask_bench.py failed:\n{ran.stdout}\n{ran.stderr}"
    report = json.loads(out.read_text())
    assert {
        "when",
        "repeat",
        "machine",
        "versions",
        "cluster",
        "cost",
        "contenders",
        "workloads",
        "results",
        "load_average",
        "cpu_seconds",
        "targets",
    } <= set(report)
    assert report["repeat"] == 1
    assert report["cost"] == 2000
    assert report["cluster"] == {"workers": 2, "threads_per_worker": 1, "processes": True}
    assert set(report["versions"]) >= {"python", "trio-troupe", "dask", "distributed"}
    sizes = {w["key"]: w["size"] for w in report["workloads"]}
    assert sizes == {"cpu": 4, "tiny": 20, "latency": 4}
    assert list(report["contenders"]) == ["troupe", "distributed", "serial"]
    for contender in dask_bench.CONTENDERS:
        for key, size in sizes.items():
            runs = report["results"][key].get(contender.name)
            if key not in contender.runs:
                assert runs is None, (key, contender.name)  # absent, not a placeholder
                continue
            assert runs is not None, (key, contender.name)
            assert [r["count"] for r in runs] == [size], (key, contender.name)
            assert all(r["seconds"] > 0 and r["cpu_seconds"] >= 0 for r in runs)
    assert [t["target"] for t in report["targets"]] == [t.what for t in dask_bench.TARGETS]
    assert report["targets"] == dask_bench.verdicts(dask_bench.rates(report["results"]))
    assert "CPU-bound tasks on 2 workers (4 of 2,000 ops)" in ran.stdout
    assert "of distributed" in ran.stdout
    assert "targets (issue 20):" in ran.stdout
    assert ran.stdout.count("ok") + ran.stdout.count("MISSED") >= 3


def _work(key: str, size: int) -> dask_bench.Workload:
    return dask_bench.Workload(key, size, key)


def test_a_lost_or_wrong_result_stops_the_benchmark() -> None:
    work = _work("tiny", 3)
    dask_bench.check("troupe", work, [1, 2, 3], [1, 2, 3])
    with pytest.raises(RuntimeError, match="troupe tiny: 2 results for 3 tasks; a result was lost"):
        dask_bench.check("troupe", work, [1, 2], [1, 2, 3])
    with pytest.raises(RuntimeError, match="distributed tiny: result 1 is 5, expected 2"):
        dask_bench.check("distributed", work, [1, 5, 3], [1, 2, 3])
    cpu = _work("cpu", 2)
    with pytest.raises(RuntimeError, match=r"result 1 is \(1, 0\), expected \(1, 7\)"):
        dask_bench.check("troupe", cpu, [(0, 7), (1, 0)], [(0, 7), (1, 7)])


def test_every_cpu_result_must_carry_the_whole_sum() -> None:
    bench = dask_bench.Bench(None, None, dask_bench.burn, dask_bench.tiny, 1000, dask_bench.burn(0, 1000)[1])  # type: ignore[arg-type]
    want = dask_bench.expected(bench, _work("cpu", 3))
    assert want == [dask_bench.burn(i, 1000) for i in range(3)]
    assert dask_bench.expected(bench, _work("latency", 3)) == [dask_bench.tiny(i) for i in range(3)]


def test_targets_are_ratios_of_medians_and_a_time_target_is_a_bound_from_above() -> None:
    def runs(*rates: float) -> list[dask_bench.Run]:
        return [dask_bench.Run(1.0, int(r)) for r in rates]

    table: dask_bench.Table = {
        "cpu": {"troupe": runs(300, 340, 320), "distributed": runs(330), "serial": runs(180, 200, 190)},
        "tiny": {"troupe": runs(400), "distributed": runs(500)},
        "latency": {"troupe": runs(80), "distributed": runs(100)},
    }
    found = dask_bench.verdicts(dask_bench.rates_of(table))
    assert [(v["target"], v["sign"], round(v["value"], 3), v["ok"]) for v in found] == [
        ("2,000 CPU-bound tasks on 2 workers over serial", ">=", round(320 / 190, 3), False),
        ("tiny tasks over raw client.map + gather", ">=", 0.8, True),
        ("time per task, one at a time, over raw submit + result", "<=", 1.25, True),
    ]
    table["latency"]["troupe"] = runs(70)
    assert not dask_bench.verdicts(dask_bench.rates_of(table))[2]["ok"]  # 100 / 70 = 1.43 > 1.3
    del table["tiny"]["distributed"]
    assert len(dask_bench.verdicts(dask_bench.rates_of(table))) == 2  # a side not measured: no verdict
    as_json = {
        k: {w: [{"seconds": r.seconds, "count": r.count} for r in rs] for w, rs in c.items()}
        for k, c in table.items()
    }
    assert dask_bench.rates(as_json) == dask_bench.rates_of(table)
