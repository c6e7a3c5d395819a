"""POST /webhooks/paddle: verify, map and queue Paddle notifications (see relay.ingest)."""

from relay.coldstart import collection_paused

with collection_paused():
    from aws_lambda_powertools import Logger, Metrics
    from relay.ingest.pipeline import build_ingest

    logger = Logger()
    metrics = Metrics()
    # Cold start: the config, the source's settings and the environment are validated here.
    pipeline = build_ingest("paddle", metrics)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event, context):
    return pipeline.handle(event, context)
