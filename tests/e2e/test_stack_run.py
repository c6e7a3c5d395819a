"""`make run` (relay-local run) as a newcomer meets it: the banner keeps real secrets to itself,
Ctrl-C stops quietly, a non-loopback --host is refused, and a taken port says how to move it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from local.commands import send_event
from testkit import LOCAL_SHOPIFY_SECRET
from tests.e2e.conftest import REPO_ROOT, STARTUP_SECONDS, config_on_free_ports, free_port

pytestmark = pytest.mark.e2e

REAL_STRIPE_SECRET = "whsec_from_my_real_stripe_account"
REAL_VENDOR_KEY = "sk_live_my_real_paddle_secret"
CHECKOUT = REPO_ROOT / "events" / "stripe" / "checkout_session_completed.json"


def relay_local_run(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local", "run", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def test_the_banner_names_given_secrets_and_ctrl_c_stops_without_tracebacks(tmp_path):
    """Given `make run` with a Stripe secret from the environment and a --secret override, When the
    banner is printed, Then it names them without their values (the local defaults stay shown);
    When a webhook has warmed a function and Ctrl-C reaches the whole process group, Then the stack
    stops with status 0 and no KeyboardInterrupt traceback from any worker."""
    config = tmp_path / "relay.yaml"
    config.write_text(config_on_free_ports(), encoding="utf-8")
    port = free_port()
    process = relay_local_run(
        *("--config", str(config), "--port", str(port), "--moto-port", str(free_port())),
        *("--secret", f"conversion-relay/paddle-webhook-secret={REAL_VENDOR_KEY}"),
        env={"STRIPE_WEBHOOK_SECRET": REAL_STRIPE_SECRET},
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not any("Ctrl-C stops the stack" in line for line in lines):
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        banner = "".join(lines)
        answer = send_event(CHECKOUT, base_url=f"http://127.0.0.1:{port}")
        assert answer.status_code == 200, answer.text
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
        rest, _ = process.communicate(timeout=60)

    assert REAL_STRIPE_SECRET not in banner and REAL_VENDOR_KEY not in banner
    assert "(from $STRIPE_WEBHOOK_SECRET)" in banner and "(set with --secret)" in banner
    assert "whsec_local_conversion_relay" not in banner  # Stripe's local default is overridden here
    assert LOCAL_SHOPIFY_SECRET in banner  # the built-in local values are shown
    assert process.returncode == 0, rest[-3000:]
    assert "KeyboardInterrupt" not in rest and "Traceback" not in rest, rest[-3000:]


def test_a_non_loopback_host_is_refused_unless_allowed():
    refused = relay_local_run("--host", "0.0.0.0", "--port", "0", "--moto-port", "0")
    out, _ = refused.communicate(timeout=60)

    assert refused.returncode == 2, out
    assert "--allow-remote" in out and "secret" in out


def test_a_taken_sandbox_port_names_the_config_not_port_or_moto_port(tmp_path):
    # Given the local config on free ports, and the Scanova sandbox's port taken by another program
    config = tmp_path / "relay.yaml"
    config.write_text(config_on_free_ports(), encoding="utf-8")
    scanova_port = int(config.read_text().split("http://127.0.0.1:", 1)[1].split()[0])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", scanova_port))
        taken.listen()
        # When the stack starts
        process = relay_local_run("--config", str(config), "--port", "0", "--moto-port", "0")
        out, _ = process.communicate(timeout=60)
    # Then it stops at once and says where that port is set
    assert process.returncode == 1, out
    assert f"scanova sandbox cannot listen on 127.0.0.1:{scanova_port}" in out
    assert "base_url of scanova in" in out and str(config.name) in out
    assert "PORT" not in out
