"""Chaos: conversions through ingest and the deliver functions while the vendors fail, then one replay.

N orders (1,000; `--quick` 200), each a signed checkout.session.completed and its
payment_intent.succeeded (one conversion, six destinations), 20 % of the webhooks sent twice (a
provider's retry), go through the Stripe function; the four deliver functions then drain their
queues (one event-source poller each, bench/stack.py) against the sandboxes while these inject
30 % 503, 10 % 429 with Retry-After and 5 % requests hung past the destinations' timeout. Then
the vendors recover and one replay (`relay replay --destination <vendor>`, no --force) sends the
jobs whose retries ran out back to their queues, which are drained again. The same run without
faults is the baseline. Retry delays are scaled by RETRY_DELAY_SCALE (as the local stack does)
and the destinations' timeout is TIMEOUT_SECONDS, so a run takes minutes.

Per destination, from what the sandboxes recorded and what the dead-letter queues hold:
delivered; parked in doubt, with the reason the deliver function recorded; lost (neither
delivered nor parked: must be 0); delivered twice to a vendor that does not dedupe (must be 0);
vendor calls per 1,000 conversions; the most conversions one request put in doubt (the DLQ's
request_id); and the time to drain, with faults and without.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bench.stack import (
    REGION,
    Order,
    Relay,
    SandboxProcess,
    attribute_strings,
    checkout_sessions,
    dead_letters,
    fake_aws,
    orders,
    relay_config,
)

FULL_ORDERS, QUICK_ORDERS = 1000, 200
DUPLICATE_SHARE = 0.2
TIMEOUT_SECONDS = 2.0  # every destination's vendor timeout in this run
FAULTS = {
    "error_rate": 0.30,
    "error_status": 503,
    "rate_429": 0.10,
    "retry_after": 1,
    "timeout_rate": 0.05,
    "hang_seconds": TIMEOUT_SECONDS + 1,  # hung past the timeout
    "seed": 12,
}
RETRY_DELAY_SCALE = "0.01"  # minutes of backoff become seconds
GOALS = {"lost": 0, "doubled": 0, "in_doubt_per_request": 25, "drain_ratio": 3.0}
SEED = 20261207


# --------------------------------------------------------------------------- one run


@dataclass
class Outcome:
    """What one run left behind, per destination."""

    delivered: Counter[str] = field(default_factory=Counter)
    doubled: Counter[str] = field(default_factory=Counter)
    in_doubt: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    other_parked: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    hung: Counter[str] = field(default_factory=Counter)
    per_request: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    drain_seconds: dict[str, float] = field(default_factory=dict)
    replay_seconds: float = 0.0
    ingest_seconds: float = 0.0
    webhooks: int = 0
    replayed: int = 0
    invocation_ms: dict[str, list[float]] = field(default_factory=dict)


def webhooks(made: list[Order], rng: random.Random) -> list[dict[str, Any]]:
    """Every order's two webhooks; a fifth of them twice (the provider retried)."""
    sent = []
    for order in made:
        for webhook in order.webhooks:
            sent.append(webhook)
            if rng.random() < DUPLICATE_SHARE:
                sent.append(webhook)
    return sent


def run_scenario(order_count: int, *, faults: bool, seed: int = SEED) -> Outcome:
    """One run (see the module doc); `faults=False` is the baseline."""
    from relay.config import load_config
    from relay.replay.scan import QueuePair
    from relay.replay.wiring import build_replayer

    from local.stack.secrets import local_secrets
    from local.world import build_world, load_template

    made = orders(order_count, prefix="chaos")
    outcome = Outcome()
    with SandboxProcess(checkout_sessions(made)) as sandboxes, fake_aws():
        workdir = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
        config_path = relay_config(sandboxes.urls, workdir / "relay.yaml", timeout_seconds=TIMEOUT_SECONDS)
        config = load_config(str(config_path))
        secrets = local_secrets(load_template(), config, environ={}, sandboxed=lambda _url: True)
        session = boto3.Session(region_name=REGION)
        world = build_world(session, secrets=secrets)
        relay = Relay(world, config_path, env_overrides={"RETRY_DELAY_SCALE": RETRY_DELAY_SCALE})
        sqs, dynamodb = session.client("sqs"), session.client("dynamodb")
        with relay.running():
            sent = webhooks(made, random.Random(seed))
            started = time.monotonic()
            for webhook in sent:
                relay.post(webhook)
            outcome.ingest_seconds = time.monotonic() - started
            outcome.webhooks = len(sent)
            if faults:
                sandboxes.set_faults(FAULTS)
            outcome.drain_seconds = relay.drain(sqs)
            sandboxes.set_faults({})
            # The vendors are back: one replay of what ran out of retries (in-doubt jobs stay).
            started = time.monotonic()
            pairs = {
                kind: QueuePair(
                    kind,
                    world.queue_url(f"{spec.title}Queue"),
                    world.queue_url(f"{spec.title}DeadLetterQueue"),
                )
                for kind, spec in relay.vendors.items()
            }
            replayer = build_replayer(
                sqs=sqs,
                dynamodb=dynamodb,
                queues=pairs,
                table_name=world.table_name,
                config_path=str(config_path),
                wait_seconds=0,
                native_supported=False,
            )
            from relay.replay.options import ReplayRequest

            for kind in relay.vendors:
                summary = replayer.replay(ReplayRequest(destination=kind, max=100_000))
                outcome.replayed += summary.moved
            relay.drain(sqs)
            outcome.replay_seconds = time.monotonic() - started
        tally(outcome, made, config, sandboxes, [dead_letters(sqs, pair.dlq_url) for pair in pairs.values()])
        for invocation in relay.invocations:
            outcome.invocation_ms.setdefault(invocation.function, []).append(invocation.duration_ms)
    return outcome


# --------------------------------------------------------------------------- what the vendors got


def tally(
    outcome: Outcome, made: list[Order], config: Any, sandboxes: SandboxProcess, dlqs: list[list[dict]]
) -> None:
    from relay.models import conversion_id

    by_conversion = {str(conversion_id("stripe", o.payment_intent, "purchase")): o.marker for o in made}
    by_intent = {o.payment_intent: o.marker for o in made}
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)  # destination → order marker → events
    names = {d.provider if d.kind == "scalev" else d.kind: n for n, d in config.destinations.items()}
    for event in sandboxes.accepted("scanova"):
        counts[names["scanova"]][by_conversion.get(event["event_id"], "?")] += 1
    for event in sandboxes.accepted("pagent"):
        session = (event.get("session_data") or event)["session_id"]
        counts[names["pagent"]][session.removeprefix("sess_")] += 1
    for event in sandboxes.accepted("scalev"):
        provider = event["_provider"]
        if provider == "snackvideo":
            marker = event["click_id"].removeprefix("kwai_")
        else:
            marker = by_intent.get(event["event_id"].split("-", 1)[0], "?")
        counts[names[provider]][marker] += 1
    lines_per_order = Counter(e["vid"] for e in sandboxes.accepted("quicklizard"))
    for vid, lines in lines_per_order.items():
        counts[names["quicklizard"]][vid.removeprefix("vid_")] += lines // 2  # two product lines an order
    parked: defaultdict[str, set[str]] = defaultdict(set)
    for message in (m for dlq in dlqs for m in dlq):
        attributes = attribute_strings(message)
        destination = attributes.get("destination", "?")
        marker = by_conversion.get(attributes.get("conversion_id", ""), "?")
        parked[destination].add(marker)
        if attributes.get("failure_reason") == "in_doubt":
            outcome.in_doubt[destination][_reason(attributes.get("failure_message"))] += 1
            if "request_id" in attributes:
                outcome.per_request[destination][attributes["request_id"]] += 1
        else:
            outcome.other_parked[destination] += 1
    markers = {o.marker for o in made}
    for name in config.destinations:
        delivered = {m for m, n in counts[name].items() if n >= 1}
        outcome.delivered[name] = len(delivered & markers)
        outcome.doubled[name] = sum(1 for m, n in counts[name].items() if n > 1)
        outcome.lost[name] = len(markers - delivered - parked[name])
    paths = {
        "/v2/conversions": names["pagent"],
        "/v1/conversions": names["pagent"],
        "/events": names["quicklizard"],
        "/server-events": names["scanova"],
    }
    for vendor in ("scanova", "pagent", "scalev", "quicklizard"):
        for request in sandboxes.requests(vendor):
            path = request["path"]
            name = next((n for p, n in paths.items() if path.startswith(p)), None)
            if vendor == "scalev":
                name = names[path.rstrip("/").split("/")[-2]]
            if name is None:
                continue
            outcome.calls[name] += 1
            if request["status"] is None:
                outcome.hung[name] += 1


def _reason(message: str | None) -> str:
    """The in-doubt reason in a few words (the deliver function's failure_message)."""
    text = (message or "in doubt").split(" (")[0]
    return "no answer" if text.startswith("no answer") else text[:40]


# --------------------------------------------------------------------------- the report


def run(quick: bool = False, order_count: int | None = None) -> dict[str, Any]:
    count = order_count or (QUICK_ORDERS if quick else FULL_ORDERS)
    calm = run_scenario(count, faults=False)
    chaos = run_scenario(count, faults=True)
    rows = []
    figures: dict[str, float] = {}
    for name in sorted(chaos.delivered, key=list(chaos.delivered).index):
        in_doubt = sum(chaos.in_doubt[name].values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in chaos.in_doubt[name].most_common()) or "-"
        worst = max(chaos.per_request[name].values(), default=0)
        per_hung = in_doubt / chaos.hung[name] if chaos.hung[name] else 0.0
        rows.append(
            [
                name,
                f"{chaos.delivered[name]} / {calm.delivered[name]}",
                f"{in_doubt} ({reasons})",
                chaos.other_parked[name],
                f"{chaos.lost[name]} / {calm.lost[name]}",
                f"{chaos.doubled[name]} / {calm.doubled[name]}",
                f"{chaos.calls[name] * 1000 / count:.0f} / {calm.calls[name] * 1000 / count:.0f}",
                chaos.hung[name],
                f"{worst} (avg {per_hung:.1f})" if in_doubt else "-",
            ]
        )
        figures[f"{name}_lost"] = chaos.lost[name] + calm.lost[name]
        figures[f"{name}_doubled"] = chaos.doubled[name] + calm.doubled[name]
        figures[f"{name}_in_doubt"] = in_doubt
        figures[f"{name}_in_doubt_per_request_max"] = worst
        figures[f"{name}_calls_per_1000"] = round(chaos.calls[name] * 1000 / count, 1)
        figures[f"{name}_calls_per_1000_fault_free"] = round(calm.calls[name] * 1000 / count, 1)
    calm_drain, chaos_drain = max(calm.drain_seconds.values()), max(chaos.drain_seconds.values())
    figures.update(
        drain_seconds_fault_free=round(calm_drain, 1),
        drain_seconds_faults=round(chaos_drain, 1),
        drain_ratio=round(chaos_drain / calm_drain, 2),
        replay_seconds=round(chaos.replay_seconds, 1),
        replayed_jobs=chaos.replayed,
        lost_total=sum(chaos.lost.values()) + sum(calm.lost.values()),
        doubled_total=sum(chaos.doubled.values()) + sum(calm.doubled.values()),
    )
    drains = ", ".join(
        f"{kind} {chaos.drain_seconds[kind]:.0f} s / {calm.drain_seconds[kind]:.0f} s"
        for kind in chaos.drain_seconds
    )
    scalev_ms = chaos.invocation_ms.get("ScalevDeliverFunction", [])
    return {
        "title": f"Chaos: {count:,} conversions, 20 % duplicate webhooks, vendor faults, one replay",
        "columns": [
            "destination",
            "delivered (faults / none)",
            "parked in doubt (reason)",
            "other parked",
            "lost",
            "delivered twice",
            "calls / 1,000",
            "hung requests",
            "in doubt per hung request (max)",
        ],
        "rows": rows,
        "figures": figures,
        "goals": {
            "*_lost": "0",
            "*_doubled": "0 where the vendor does not dedupe (pagent, QuickLizard, SnackVideo)",
            "*_in_doubt_per_request_max": f"<= {GOALS['in_doubt_per_request']}",
            "drain_ratio": f"<= {GOALS['drain_ratio']} (drain with faults / without)",
        },
        "notes": [
            f"faults: {FAULTS}; timeouts {TIMEOUT_SECONDS:g} s; RETRY_DELAY_SCALE {RETRY_DELAY_SCALE}",
            f"webhooks sent: {chaos.webhooks} (ingest {chaos.ingest_seconds:.0f} s with faults run)",
            f"drain with faults / without, per vendor queue: {drains}",
            f"then faults off, one replay (no --force): {chaos.replayed} jobs moved, "
            f"{chaos.replay_seconds:.0f} s to deliver them",
            "Scalev invocation with faults, median / max: "
            + (f"{statistics.median(scalev_ms):.0f} / {max(scalev_ms):.0f} ms" if scalev_ms else "-"),
            "delivered twice counts a vendor that dedupes only when it recorded a second copy as new",
        ],
    }


if __name__ == "__main__":  # `python -m bench --only chaos` is the usual way
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--orders", type=int)
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, order_count=args.orders), indent=2))
