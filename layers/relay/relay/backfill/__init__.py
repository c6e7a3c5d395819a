"""Backfill and reconcile: read the providers' own logs back and relay what the webhooks missed.

- `api`: one provider's REST API for reading (timeouts, paging helpers, 429/Retry-After and
  5xx retries, pacing under the documented limits, a call counter).
- `history`: what a reader is (`HistoryReader`: pages of events in a time window, or one event
  by the key its webhook is claimed under), the window, and the webhook-shaped parse.
- `stripe`, `paddle`, `shopify`, `hubspot`, `pipedrive`: one reader per provider; `readers`
  lists them with the read key each needs.
- `runner`: feeds what a reader yields through IngestPipeline.relay_event (the webhook's claim,
  enrich, map and queue), with a destination filter, a dry run and a checkpoint.
- `reconcile`: ReconcileFunction's logic (the last window of every source with a read key).
- `wiring`: building it all for the function and for `relay backfill`.

Every event is claimed under the key its webhook is claimed under, so an event that arrives
both ways counts once, and the delivery ledger keeps every destination exactly-once.
See docs/guarantees.md.
"""
