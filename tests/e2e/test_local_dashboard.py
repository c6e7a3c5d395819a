"""The local stack's dashboard (GET /_local/) in a real headless browser: Debian's chromium driven
through chromium-driver by selenium. It loads, shows a conversion sent with `make send` (the page
refreshes itself), and logs no console error. Skipped, saying why, only where no Chromium or
driver is installed (.ci/run installs both: apt-get install chromium chromium-driver)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDER = REPO_ROOT / "events" / "stripe" / "invoice_paid.json"
PAGE_SECONDS = 30.0
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def _browser_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("no Chromium here: apt-get install -y chromium chromium-driver (what .ci/run does)")
    return browser, driver


@pytest.fixture
def browser(tmp_path) -> Iterator[object]:
    """Headless Chromium with a fresh profile; its console log is kept (goog:loggingPrefs)."""
    browser_path, driver_path = _browser_paths()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra: make venv")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for downloads
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(PAGE_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    return driver.find_element("tag name", "body").text


def wait_until(driver, condition, what: str) -> None:
    deadline = time.monotonic() + PAGE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}:\n{page_text(driver)}")
        time.sleep(0.2)


def test_the_dashboard_loads_shows_a_sent_conversion_and_logs_no_console_error(stack, browser):
    # Given the local stack's dashboard open in a browser
    browser.get(f"{stack.url}/_local/")
    wait_until(browser, lambda: "live, every 2 s" in page_text(browser), "its first refresh")
    assert browser.title == "Conversion Relay: local stack"
    headings = [h.text for h in browser.find_elements("tag name", "h2")]
    for panel in (
        "Conversions by destination",
        "Queues",
        "Dead letters",
        "Last conversions",
        "Webhooks answered",
    ):
        assert any(h.startswith(panel) for h in headings), headings

    # When a conversion is sent as `make send FRESH=1` sends it
    port = stack.url.rsplit(":", 1)[1]
    sent = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local", "send", str(ORDER), "--port", port, "--fresh"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr
    conversion_id = json.loads(sent.stdout.split("\n", 1)[1])["conversions"][0]

    # Then the page, refreshing itself, shows it delivered and the webhook answered
    wait_until(browser, lambda: conversion_id in page_text(browser), f"conversion {conversion_id}")
    rows = [r.text for r in browser.find_elements("css selector", "#recent tbody tr")]
    assert any(conversion_id in row and "delivered" in row for row in rows), rows
    assert "POST /webhooks/stripe" in page_text(browser)
    # and the browser logged no error (a failed request, a script error)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
