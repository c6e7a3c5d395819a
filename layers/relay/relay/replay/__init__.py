"""Replay from the vendor dead-letter queues (the `relay dlq` / `relay replay` commands and
ReplayFunction).

- options: ReplayRequest, what to replay (CLI options and the function's event)
- scan: parked jobs and the DLQ read under a visibility hold
- results: listings, summaries, native moves
- replayer: list, show, replay (send first, delete after; the ledger decides)
- native: SQS StartMessageMoveTask for a whole DLQ
- wiring: replayers built on AWS clients (ReplayFunction, the CLI)
"""
