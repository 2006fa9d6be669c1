"""The one module that configures Celery (see design.md, "Celery settings", for the why).

celery -A workers.celery_app worker -Q lanes.promoted,lanes.interactive -P threads
celery -A workers.celery_app worker -Q lanes.deferrable,lanes.control -P threads
celery -A workers.celery_app beat        # exactly ONE beat per deployment
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from kombu import Exchange, Queue

from lanes import names
from lanes.settings import LanesSettings, get_settings

TASK_MODULES = ["workers.realtime", "workers.watchdog", "workers.accumulator"]


def broker_url_for(settings: LanesSettings) -> str:
    return settings.redis_url or "redis://127.0.0.1:6379/0"


def configure(app: Celery, settings: LanesSettings) -> Celery:
    exchange = Exchange("lanes", type="direct")
    app.conf.update(
        broker_url=broker_url_for(settings),
        broker_connection_retry_on_startup=True,
        # Visibility timeout above the longest task, or Redis redelivers work still running.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            # Consume queues in the order given to -Q: promoted before interactive.
            "queue_order_strategy": "priority",
        },
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,  # results live in SQL, the source of truth
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        task_create_missing_queues=False,
        task_queues=[Queue(q, exchange, routing_key=q) for q in names.ALL_QUEUES],
        task_default_queue=names.QUEUE_INTERACTIVE,
        task_default_exchange="lanes",
        task_default_routing_key=names.QUEUE_INTERACTIVE,
        task_routes={
            names.TASK_RUN_REALTIME: {"queue": names.QUEUE_INTERACTIVE},
            names.TASK_ACCUMULATE: {"queue": names.QUEUE_DEFERRABLE},
            names.TASK_WATCHDOG: {"queue": names.QUEUE_CONTROL},
            names.TASK_POLL_BATCHES: {"queue": names.QUEUE_CONTROL},
            names.TASK_FLUSH_BATCHES: {"queue": names.QUEUE_CONTROL},
        },
        worker_send_task_events=True,  # Flower
        task_send_sent_event=True,
        beat_schedule={
            name: {"task": task, "schedule": timedelta(seconds=settings.housekeeping_interval_s)}
            for name, task in (
                ("watchdog", names.TASK_WATCHDOG),
                ("flush-batches", names.TASK_FLUSH_BATCHES),
                ("poll-batches", names.TASK_POLL_BATCHES),
            )
        },
        timezone="UTC",
        enable_utc=True,
    )
    return app


def create_app(settings: LanesSettings | None = None) -> Celery:
    app = Celery("llm_lanes", set_as_current=True)
    configure(app, settings or get_settings())
    app.conf.include = [m for m in TASK_MODULES if _importable(m)]
    return app


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


app = create_app()
