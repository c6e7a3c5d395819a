"""Deliver: an SQS batch of delivery jobs in, vendor calls out, exactly once per destination
(the deliver_<kind> functions; see relay.deliver.deliverer for the steps).

- work: one record of the batch and its verdict; the invocation's deadline
- sending: a batch of prepared jobs sent in full vendor requests (split on a whole refusal)
- settlement: verdicts made durable: ledger, dead-letter queue, backoff
- report: metrics and log lines per batch (ids only, never a payload)
- build: everything a deliver function needs, built once at cold start
"""
