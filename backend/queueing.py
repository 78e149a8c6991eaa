"""Publishing Celery tasks from request code without ever blocking or failing the request.

The database holds every pending side effect; a publish only makes it happen sooner. So a publish
runs after commit, and a broker that is down is logged and forgotten: the sweepers find the work.
After a failure, publishing is skipped for a few seconds, so a dead Redis costs one short timeout
rather than one per request.
"""

import logging
import time

from django.db import transaction

logger = logging.getLogger(__name__)

_BROKER_DOWN_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def publish(task, *args, queue: str | None = None) -> bool:
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return False
    try:
        task.apply_async(args=args, queue=queue, retry=False)
        return True
    except Exception:
        _broker_down_until = time.monotonic() + _BROKER_DOWN_BACKOFF_SECONDS
        logger.warning("could not publish task; the sweeper will pick the work up", extra={"task": task.name})
        return False


def publish_on_commit(task, *args, queue: str | None = None) -> None:
    transaction.on_commit(lambda: publish(task, *args, queue=queue))
