"""bench/bench_delivery.py keeps working and keeps its goals: a quick run (300 jobs per vendor)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_delivery_benchmark_meets_its_goals(tmp_path: Path) -> None:
    """Given `python -m bench --quick --only delivery`, when it runs, then every vendor got each
    event exactly once, in full requests: 100 jobs where the vendor dedupes, max_in_doubt (25)
    where a hung request would park its jobs in doubt."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench", "--quick", "--only", "delivery", "--results", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads((tmp_path / "bench_delivery.json").read_text())["figures"]
    assert all(
        figures[f"{vendor}_exactly_once"] == 1 for vendor in ("scanova", "pagent", "scalev", "quicklizard")
    )
    assert figures["scanova_calls_per_1000"] <= 10
    assert figures["pagent_expected_calls_per_1000"] == figures["quicklizard_expected_calls_per_1000"] == 40
    assert all(
        figures[f"{vendor}_calls_per_1000"] <= figures[f"{vendor}_expected_calls_per_1000"]
        for vendor in ("scanova", "pagent", "quicklizard")
    )
    assert all(
        figures[f"{v}_cpu_ms_per_conversion"] > 0 for v in ("scanova", "pagent", "scalev", "quicklizard")
    )
