"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print a table per module and
write `bench/results/<module>.json`.

Modules are the `bench/bench_*.py` files; `--only ingest` (or `--only bench_ingest`) picks one.
`--quick` is a fast smoke run (few iterations: its figures are not meant to be read); `--results DIR`
writes the JSON elsewhere. The exit
status is 1 when a module fails or returns a malformed result, 2 for an unknown module name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PREFIX = "bench_"
REQUIRED: dict[str, type] = {"title": str, "columns": list, "rows": list, "figures": dict, "goals": dict}


def discover() -> list[str]:
    return sorted(path.stem for path in BENCH_DIR.glob(f"{PREFIX}*.py"))


def select(available: list[str], only: Sequence[str] | None) -> list[str]:
    if not only:
        return available
    wanted = [name if name.startswith(PREFIX) else f"{PREFIX}{name}" for name in only]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return wanted


def check(result: Any) -> dict[str, Any]:
    """The result as the contract says, or ValueError naming what is wrong."""
    if not isinstance(result, dict):
        raise ValueError(f"run() returned {type(result).__name__}, not a dict")
    for key, kind in REQUIRED.items():
        if not isinstance(result.get(key), kind):
            raise ValueError(f"result[{key!r}] must be a {kind.__name__}")
    width = len(result["columns"])
    for row in result["rows"]:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"every row must be a list of {width} cells: {row!r}")
    for name, value in result["figures"].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"figure {name!r} must be a number, not {value!r}")
    return result


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return "" if value is None else str(value)


def render(module: str, result: dict[str, Any]) -> str:
    table = [result["columns"], *[[cell(v) for v in row] for row in result["rows"]]]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(result["columns"]))]
    lines = [f"== {result['title']} ({module})", ""]
    for n, row in enumerate(table):
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if result["figures"]:
        lines += ["", "figures:"] + [f"  {name} = {cell(value)}" for name, value in result["figures"].items()]
    if result["goals"]:
        lines += ["goals:"] + [f"  {name}: {text}" for name, text in result["goals"].items()]
    if result.get("notes"):
        lines += ["notes:"] + [f"  {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def run_one(module: str, quick: bool) -> dict[str, Any]:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    result = check(importlib.import_module(f"bench.{module}").run(quick=quick))
    return {
        "module": module,
        "quick": quick,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **result,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (few iterations)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this module (repeatable)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR, metavar="DIR", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    modules = select(discover(), args.only)
    args.results.mkdir(parents=True, exist_ok=True)
    failed = 0
    for module in modules:
        try:
            record = run_one(module, args.quick)
        except Exception:  # one broken benchmark must not hide the others' results
            failed += 1
            print(f"== {module}: FAILED", file=sys.stderr)
            traceback.print_exc()
            continue
        print(render(module, record), flush=True)
        path = args.results / f"{module}.json"
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"   -> {path}\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
