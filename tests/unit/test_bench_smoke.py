"""The benchmark harness keeps working: `python -m bench --quick --only ingest` runs and writes its
JSON (timings are not asserted: benchmarks report them, tests do not judge them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import __main__ as harness

REPO = Path(__file__).resolve().parents[2]
GOOD = {
    "title": "t",
    "columns": ["a", "b"],
    "rows": [["x", 1.5]],
    "figures": {"f": 1},
    "goals": {"f": "<= 2"},
}


def test_the_quick_ingest_benchmark_runs_and_writes_its_json(tmp_path):
    # Given the real harness in its own process (benchmarks time fresh interpreters)
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench", "--quick", "--only", "ingest", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it succeeds, prints its table, and the JSON follows the contract
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Stripe ingest" in done.stdout
    record = json.loads((tmp_path / "bench_ingest.json").read_text(encoding="utf-8"))
    assert harness.check(record) is record
    assert record["module"] == "bench_ingest" and record["quick"] is True
    assert {
        "cold_init_handler_median_ms",
        "cold_init_floor_median_ms",
        "cold_init_ratio",
        "cold_init_libraries_ratio",
        "cold_init_relay_share_ms",
        "warm_handler_median_ms",
        "warm_floor_median_ms",
    } <= set(record["figures"])
    assert set(record["goals"]) == {"cold_init_ratio", "warm_handler_median_ms"}
    # Differences of two timings (one sample each in a quick run): any sign
    for difference in ("cold_init_relay_budget_ms", "cold_init_relay_share_ms"):
        assert isinstance(record["figures"].pop(difference), float)
    assert all(value > 0 for value in record["figures"].values())


def test_modules_are_discovered_and_selected_by_short_name():
    assert "bench_ingest" in harness.discover()
    assert harness.select(["bench_a", "bench_b"], ["b"]) == ["bench_b"]
    assert harness.select(["bench_a", "bench_b"], None) == ["bench_a", "bench_b"]
    with pytest.raises(SystemExit, match="unknown benchmark"):
        harness.select(["bench_a"], ["nope"])


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ({**GOOD, "rows": [["only one cell"]]}, "every row must be a list of 2 cells"),
        ({**GOOD, "figures": {"f": "fast"}}, "figure 'f' must be a number"),
        ({**GOOD, "figures": {"f": True}}, "figure 'f' must be a number"),
        ({k: v for k, v in GOOD.items() if k != "goals"}, "result\\['goals'\\] must be a dict"),
        ([1, 2], "not a dict"),
    ],
)
def test_malformed_results_are_refused(broken, why):
    with pytest.raises(ValueError, match=why):
        harness.check(broken)


def test_render_prints_the_table_figures_and_goals():
    text = harness.render("bench_x", {**GOOD, "notes": ["a note"]})
    assert text.splitlines()[0] == "== t (bench_x)"
    assert "x  1.500" in text
    assert "f = 1" in text and "f: <= 2" in text and "a note" in text
