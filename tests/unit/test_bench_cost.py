"""The cost model's access-log line: the template's own format, filled as API Gateway fills it."""

from __future__ import annotations

import json

from bench.bench_cost import access_log_format, access_log_line


def test_an_access_log_line_is_the_templates_format_filled_for_one_webhook():
    # Given the HTTP API's access-log format from template.yaml
    log_format = access_log_format()
    assert "$context.requestId" in log_format

    # When the line of one webhook answered with 57 bytes is made
    line = access_log_line(log_format, 57)

    # Then every variable is filled and the line is the JSON object API Gateway would write
    assert "$context" not in line
    logged = json.loads(line)
    assert logged["responseLength"] == "57"
    assert logged["routeKey"] == "POST /webhooks/stripe"
    assert logged["status"] == "200"
    assert set(logged) >= {"requestId", "requestTime", "sourceIp", "integrationLatency"}
