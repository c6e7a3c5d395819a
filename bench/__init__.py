"""Benchmarks: `python -m bench` (`make bench`) runs every `bench/bench_*.py` module.

A module exposes `run(quick: bool = False) -> dict` returning
`{"title": str, "columns": [str], "rows": [[...]], "figures": {name: number}, "goals": {name: text}}`
and may add `"notes": [str]`. Traffic goes to 127.0.0.1 only and every loop is bounded.
"""
