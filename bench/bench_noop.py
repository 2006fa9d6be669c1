"""The bare-Celery baseline task of bench/lane_overhead.py (loaded into the worker with -I)."""

from __future__ import annotations

import time

import redis

from workers.celery_app import app

_client: redis.Redis | None = None


@app.task(name="bench.noop")
def noop(key: str) -> None:
    started = time.time()
    global _client
    if _client is None:
        _client = redis.Redis.from_url(app.conf.broker_url)
    _client.hset("bench:noop", key, repr(started))
