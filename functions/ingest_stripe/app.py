"""POST /webhooks/stripe: verify, map and queue a Stripe webhook (see relay.ingest)."""

from relay.coldstart import collection_paused

with collection_paused():
    from aws_lambda_powertools import Logger, Metrics
    from relay.ingest.pipeline import build_ingest

    logger = Logger()
    metrics = Metrics()
    # Cold start: the config and environment are validated here; a bad one fails the init.
    pipeline = build_ingest("stripe", metrics)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event, context):
    return pipeline.handle(event, context)
