"""ReconcileFunction: relay what the providers hold and the webhooks missed (relay.backfill.reconcile).

Scheduled hourly by EventBridge (template parameter ReconcileSchedule); a manual invoke may
narrow it: {"sources": ["stripe"], "window_hours": 72}. The answer is the per-source report.
"""

from aws_lambda_powertools import Logger, Metrics
from relay.backfill.wiring import build_reconciler

logger = Logger()
metrics = Metrics()
# Cold start: the environment, the relay config and each reader's settings are validated here.
reconciler = build_reconciler(metrics)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event, context):
    return reconciler.run(event, context)
