"""The operator's emergency switch: stop batching and serve the deferrable lane in realtime.

On when `LLM_LANES_BATCHING_DISABLED=true` (a deploy-time decision) OR the Redis key
`names.KEY_EMERGENCY_REALTIME` exists (flipped at runtime from `llm-lanes batches switch on`,
seen by every worker within one flush tick, no restart). A Redis outage reads as "off" for
the key, so a broken Redis never silently reroutes the whole lane.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from lanes import names

log = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def _client(url: str) -> redis.Redis:
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            _clients[url] = client
        return client


def broker_url(rt: Any) -> str:
    return str(rt.app.conf.broker_url)


def redis_switch_on(rt: Any) -> bool:
    try:
        return bool(_client(broker_url(rt)).exists(names.KEY_EMERGENCY_REALTIME))
    except redis.RedisError as exc:
        log.warning(
            "emergency switch: Redis unreadable (%s); treating the key as off", type(exc).__name__
        )
        return False


def batching_disabled(rt: Any) -> bool:
    """True when the deferrable lane must go to realtime (env setting or Redis key)."""
    return bool(rt.settings.batching_disabled) or redis_switch_on(rt)


def set_switch(rt: Any, on: bool) -> None:
    client = _client(broker_url(rt))
    if on:
        client.set(names.KEY_EMERGENCY_REALTIME, "1")
    else:
        client.delete(names.KEY_EMERGENCY_REALTIME)


def switch_status(rt: Any) -> dict[str, bool]:
    env = bool(rt.settings.batching_disabled)
    key = redis_switch_on(rt)
    return {"env": env, "redis": key, "on": env or key}
