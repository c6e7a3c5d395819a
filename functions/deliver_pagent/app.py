"""SQS → pagent: deliver queued conversions exactly once per destination (see relay.deliver)."""

from aws_lambda_powertools import Logger, Metrics
from relay.deliver.build import build_deliverer

logger = Logger()
metrics = Metrics()
# Cold start: the config and environment are validated here; a bad one fails the init.
deliverer = build_deliverer("pagent", metrics)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event, context):
    return deliverer.handle(event, context)
