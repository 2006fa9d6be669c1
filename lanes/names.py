"""Every queue name, routing key and Redis key llm-lanes uses, in one place."""

from __future__ import annotations

from typing import Final

QUEUE_PROMOTED: Final = "lanes.promoted"
"""Deferrable jobs near their deadline: consumed by realtime workers before interactive work."""
QUEUE_INTERACTIVE: Final = "lanes.interactive"
QUEUE_DEFERRABLE: Final = "lanes.deferrable"
QUEUE_CONTROL: Final = "lanes.control"
"""Periodic watchdog/poller work, so housekeeping never waits behind a lane backlog."""

ALL_QUEUES: Final = (QUEUE_PROMOTED, QUEUE_INTERACTIVE, QUEUE_DEFERRABLE, QUEUE_CONTROL)
REALTIME_QUEUES: Final = (QUEUE_PROMOTED, QUEUE_INTERACTIVE)

TASK_RUN_REALTIME: Final = "lanes.run_realtime"
TASK_ACCUMULATE: Final = "lanes.accumulate"
TASK_WATCHDOG: Final = "lanes.watchdog"
TASK_POLL_BATCHES: Final = "lanes.poll_batches"
TASK_FLUSH_BATCHES: Final = "lanes.flush_batches"

KEY_PREFIX: Final = "llm-lanes:"
KEY_DEPTH_GAUGE: Final = KEY_PREFIX + "depth"
"""Hash lane -> depth, refreshed by the watchdog (Flower has no queue-length metric)."""
KEY_WATCHDOG_LOCK: Final = KEY_PREFIX + "lock:watchdog"
KEY_FLUSH_LOCK: Final = KEY_PREFIX + "lock:flush-batches"
KEY_POLL_LOCK: Final = KEY_PREFIX + "lock:poll-batches"
KEY_EMERGENCY_REALTIME: Final = KEY_PREFIX + "switch:deferrable-to-realtime"
