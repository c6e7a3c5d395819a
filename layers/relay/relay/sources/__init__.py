"""Webhook sources: one module per provider behind a `SourceSpec` (relay.sources.spec).

Each `relay.sources.<provider>` says how the provider signs, frames and describes its
events, and its built-in conversion rules; the ingest pipeline is the same for all.
"""
