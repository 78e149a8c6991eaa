"""Publishing Celery tasks from request code without ever blocking or failing the request.

The database holds every pending side effect; a publish only makes it happen sooner. So a publish
runs after commit, and a broker that is down is logged and forgotten: the sweepers find the work.
After a failure, publishing is skipped for a few seconds, so a dead Redis costs one short timeout
rather than one per request.
"""

import logging
import time

import redis
from django.conf import settings
from django.db import transaction
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel

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


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each Celery queue; None when Redis does not answer or is not the broker
    (the embedded demo's filesystem broker).

    Kombu keeps a queue as a Redis list named after it, plus one list per priority step
    (`<queue>\\x06\\x16<n>`) once a task is sent with a priority: all of them, one round trip.
    """
    if not settings.REDIS_URL:
        return None
    timeout = settings.REDIS_SOCKET_TIMEOUT * 4  # the broker's own timeouts (settings.py)
    keys = {
        queue.name: [queue.name] + [f"{queue.name}{RedisChannel.sep}{step}" for step in PRIORITY_STEPS if step]
        for queue in settings.CELERY_TASK_QUEUES
    }
    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout) as client:
            pipe = client.pipeline(transaction=False)
            for names in keys.values():
                for key in names:
                    pipe.llen(key)
            sizes = iter(pipe.execute())
    except redis.RedisError:
        return None
    return {queue: sum(next(sizes) for _ in names) for queue, names in keys.items()}
