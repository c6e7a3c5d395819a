"""The stack described: the banner `make run` prints (routes, queues, schedules, secrets,
sandboxes), GET /_local/info (what a client needs) and GET /_local/ (the dashboard page).

Secret values are shown only where they are the documented local defaults; a value given with
--secret or the environment is named, never printed (it may be a real one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.apigw import HttpAnswer
from local.stack.sandboxes import is_loopback
from local.stack.secrets import WEBHOOK_SECRETS, WebhookSecret
from local.world import REPO_ROOT, FunctionSpec

if TYPE_CHECKING:
    from local.stack.stack import LocalStack

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard.html"


def banner(stack: LocalStack) -> str:
    assert stack.world is not None and stack.aws is not None and stack.http is not None
    world, options = stack.world, stack.options
    lines = [
        "Conversion Relay: local stack (no Docker, no AWS account)",
        f"  relay config   {shown_path(options.config_path)}",
        f"  AWS (moto)     {stack.aws.endpoint_url}   table {world.table_name}",
        f"  HTTP API       {stack.http.url}",
    ]
    for logical_id, spec in world.functions.items():
        for method, path in spec.http_routes:
            note = (
                ""
                if logical_id in stack.runtimes
                else f"   (not deployed: {shown_path(spec.code_uri)}/ is missing)"
            )
            lines.append(f"    {method} {path:<22} → {logical_id}{note}")
    lines.append(f"  Queues         retry delays scaled by {options.retry_delay_scale:g}")
    for logical_id, spec in world.functions.items():
        if spec.sqs_queue is None:
            continue
        if logical_id in stack.runtimes:
            window = spec.batching_window if options.batching_window is None else options.batching_window
            note = f"batch {spec.batch_size}, window {window:g} s"
        else:
            note = f"not polled: {shown_path(spec.code_uri)}/ is missing"
        lines.append(f"    {spec.sqs_queue:<20} → {logical_id}   ({note})")
    for runner in stack.schedules:
        lines.append(f"  Schedule       {runner.function} every {runner.interval:g} s (scaled)")
    lines.append("  Webhook signing secrets (values shown only for the built-in local ones)")
    for provider, secret in WEBHOOK_SECRETS.items():
        name = world.parameters.get(secret.parameter, "")
        lines.append(f"    {provider:<10} {name:<42} {_shown_secret(stack, name, secret)}")
    lines.append("  Sandboxes (vendors, and the providers' APIs with their logs)")
    for plan, sandbox in stack.sandboxes:
        lines.append(f"    {plan.name:<12} {sandbox.url:<24} for {', '.join(plan.serves)}")
    for plan in stack.unavailable_sandboxes:
        lines.append(
            f"    {plan.name:<12} (no sandbox available for port {plan.port}: {', '.join(plan.serves)})"
        )
    assert stack.config is not None
    for name, destination in stack.config.destinations.items():
        if not is_loopback(str(destination.base_url)):
            lines.append(f"    {name:<12} {destination.base_url} (the real vendor)")
    port = "" if options.port == 3000 else f" PORT={stack.http.port}"
    lines += [
        f"  Dashboard      {stack.http.url}/_local/   (live in a browser)",
        f"  Status         {stack.http.url}/_local/status   (make status{port})",
        "",
        "Send a signed test event:",
        f"  make send EVENT=events/stripe/checkout_session_completed.json{port}",
        "Forward Stripe test-mode webhooks (restart with STRIPE_WEBHOOK_SECRET=<the whsec_ it prints>):",
        f"  stripe listen --forward-to localhost:{stack.http.port}/webhooks/stripe",
        "Ctrl-C stops the stack.",
    ]
    return "\n".join(lines)


def _shown_secret(stack: LocalStack, name: str, secret: WebhookSecret) -> str:
    """The value only when it is the documented local default; else where it came from."""
    if name in stack.options.secret_overrides:
        return "(set with --secret)"
    if stack.options.environ.get(secret.env):
        return f"(from ${secret.env})"
    value = stack.secrets.get(name, "")
    return value if value == secret.local_value else "(set)"


def dashboard_page() -> HttpAnswer:
    """GET /_local/: the dashboard (one file, inline CSS and JS, reading /_local/status)."""
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
    return HttpAnswer(200, headers, DASHBOARD.read_bytes())


def provider_of(spec: FunctionSpec) -> str:
    """The provider a webhook function serves (its folder: functions/ingest_<provider>)."""
    return spec.code_uri.name.removeprefix("ingest_")


def shown_path(path: Path) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


def stack_info(stack: LocalStack) -> dict[str, Any]:
    """What a client of the stack needs: its routes, their signing secrets, the AWS endpoint."""
    assert stack.world is not None and stack.aws is not None and stack.http is not None
    routes = []
    for logical_id, spec in stack.world.functions.items():
        for method, path in spec.http_routes:
            routes.append(
                {
                    "method": method,
                    "path": path,
                    "function": logical_id,
                    "provider": provider_of(spec),
                    "secret_name": spec.environment.get("WEBHOOK_SECRET_NAME"),
                    "deployed": logical_id in stack.runtimes,
                }
            )
    return {
        "url": stack.http.url,
        "aws_endpoint": stack.aws.endpoint_url,
        "region": stack.world.region,
        "routes": routes,
        "sandboxes": {plan.name: sandbox.url for plan, sandbox in stack.sandboxes},
    }
