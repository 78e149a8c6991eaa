"""Publishing Celery tasks from request code without ever blocking or failing the request.

The database holds every pending side effect; a publish only makes it happen sooner. So a publish
runs after commit, and a broker that is down is logged and forgotten: the sweepers find the work.
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def publish(task, *args, queue: str | None = None) -> bool:
    try:
        task.apply_async(args=args, queue=queue, retry=False)
        return True
    except Exception:
        logger.warning("could not publish task; the sweeper will pick the work up", extra={"task": task.name})
        return False


def publish_on_commit(task, *args, queue: str | None = None) -> None:
    transaction.on_commit(lambda: publish(task, *args, queue=queue))
