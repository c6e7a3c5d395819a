"""The functions' log lines as the local stack prints them: Powertools JSON made readable."""

from __future__ import annotations

import json

# What every Powertools line carries; the terminal shows only what the line is about.
_ROUTINE = frozenset(
    {
        "level",
        "message",
        "timestamp",
        "service",
        "location",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
        "exception",
        "exception_name",
        "stack_trace",
    }
)


def compact(line: str) -> str:
    """`INFO job delivered destination=scanova …` for a Powertools JSON line; others unchanged."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    fields = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
        for key, value in record.items()
        if key not in _ROUTINE
    )
    text = f"{record.get('level', '')} {record['message']}" + (f"  {fields}" if fields else "")
    if record.get("exception"):
        text += "\n" + str(record["exception"])
    return text
