"""Ingest: a provider's webhook in, delivery jobs out (the ingest_<provider> functions).

- edge: the API Gateway HTTP API event → a WebhookRequest; errors → HTTP answers (one place)
- signatures: each provider's signature scheme, constant time, with rotation
- mapping: a source's rules applied to a provider payload → canonical conversions
- queueing: one delivery job per (conversion, destination) → the vendor queues
- pipeline: the order of it all, the same for every provider (build_ingest at cold start)
"""
