"""ReplayFunction: move parked jobs from a vendor DLQ back to its queue (relay.replay; docs/replay.md).

The event takes the options of `relay replay`, e.g.
{"destination": "scanova", "reason": "retries_exhausted", "since": "2h", "max": 500, "dry_run": true}
and the answer is the replay summary (or the native move task started with "native": true).
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser import event_parser
from relay.replay.options import ReplayRequest
from relay.replay.wiring import build_function_replayer

logger = Logger()
metrics = Metrics()
# Cold start: the environment and the relay config are validated here.
replayer = build_function_replayer()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@event_parser(model=ReplayRequest)
def lambda_handler(request: ReplayRequest, context):
    return replayer.run(
        request,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
        metrics=metrics,
    )
