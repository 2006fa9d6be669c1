"""Publishes job dispatches to the lane queues over one pooled broker connection."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from lanes import names
from lanes.ports import Dispatch

TASK_FOR_QUEUE = {
    names.QUEUE_INTERACTIVE: names.TASK_RUN_REALTIME,
    names.QUEUE_PROMOTED: names.TASK_RUN_REALTIME,
    names.QUEUE_DEFERRABLE: names.TASK_ACCUMULATE,
}


class CeleryPublisher:
    """`send_task` by name, so producers need no worker code imported."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        with self.app.producer_or_acquire() as producer:
            for d in dispatches:
                self.app.send_task(
                    TASK_FOR_QUEUE[d.queue],
                    args=[d.job_id],
                    queue=d.queue,
                    routing_key=d.queue,
                    producer=producer,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
                )
