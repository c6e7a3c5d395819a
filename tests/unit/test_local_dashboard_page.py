"""local/dashboard.html works offline: nothing is loaded from another host, and the local API
serves it at /_local/ (the page's behaviour is tested in a browser: tests/e2e/test_local_dashboard.py)."""

from __future__ import annotations

import re
from pathlib import Path

from local.apigw import HttpApi, HttpRequest
from local.stack.stack import dashboard_page

PAGE = (Path(__file__).resolve().parents[2] / "local" / "dashboard.html").read_text(encoding="utf-8")


def test_the_page_loads_nothing_from_the_network():
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", PAGE)
    assert "@import" not in PAGE and "url(http" not in PAGE
    assert re.findall(r"fetch\(\"([^\"]+)\"", PAGE) == ["/_local/status"]


def test_the_page_never_writes_status_values_as_html():
    assert "innerHTML" not in PAGE and "insertAdjacentHTML" not in PAGE


def test_the_local_api_serves_the_page_at_local_slash():
    api = HttpApi([], {}, account_id="123456789012", local_endpoints={"": dashboard_page})

    page = api.handle(HttpRequest("GET", "/_local/", [], b"", "127.0.0.1"), "127.0.0.1:3000")
    bare = api.handle(HttpRequest("GET", "/_local", [], b"", "127.0.0.1"), "127.0.0.1:3000")

    assert page.status == 200 and ("Content-Type", "text/html; charset=utf-8") in page.headers
    assert page.body.decode() == PAGE
    assert (bare.status, bare.headers) == (308, [("Location", "/_local/")])
