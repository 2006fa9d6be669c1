"""Promoted jobs jump the interactive backlog: a realtime worker consumes `lanes.promoted`
before `lanes.interactive` (kombu's `priority` queue order), as design.md decides.

Runs its own private Redis and a one-slot worker process, so the session's test worker never
touches these queues; the order is read from the simulator's request log (job id header).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lanes import names
from lanes.ports import Dispatch, JobState
from lanes.settings import load_settings
from tests.conftest import _sim_settings
from tests.support import wait_for
from workers.embedded import start_private_redis
from workers.runtime import Runtime, set_runtime

pytestmark = pytest.mark.integration


def test_promoted_jobs_are_served_before_the_interactive_backlog(tmp_path, simulator) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'p.db'}"
    with start_private_redis(use_env=False) as private:
        settings = load_settings(redis_url=private.url, database_url=db, **_sim_settings(simulator))
        from celery import Celery

        from workers.celery_app import configure

        producer_app = configure(Celery("prio-producer", set_as_current=False), settings)
        rt = Runtime(settings=settings, app=producer_app)
        set_runtime(rt)
        try:
            simulator.reset()
            backlog = [
                rt.producer()
                .enqueue(
                    {"messages": [{"role": "user", "content": f"q{i}"}], "model": "gpt-5.4-nano"}
                )
                .job_id
                for i in range(6)
            ]
            urgent = [
                rt.producer()
                .enqueue(
                    {
                        "messages": [{"role": "user", "content": f"u{i}"}],
                        "lane": "deferrable",
                        "max_delay_s": 3600,
                        "model": "gpt-5.4-nano",
                    }
                )
                .job_id
                for i in range(3)
            ]
            # The watchdog does this near a deadline; do it directly, then publish. With
            # round-robin consumption the two lanes would alternate; priority drains promoted.
            for job_id in urgent:
                assert rt.store.transition(
                    job_id, expected=(JobState.QUEUED,), to=JobState.PROMOTED, promoted=True
                )
            rt.publisher.publish([Dispatch(j, names.QUEUE_PROMOTED) for j in urgent])
            env = dict(os.environ)
            env.update(
                {
                    k.upper(): str(v)
                    for k, v in {
                        "LLM_LANES_REDIS_URL": private.url,
                        "LLM_LANES_DATABASE_URL": db,
                        "LLM_LANES_OPENAI_BASE_URL": simulator.openai_base_url,
                        "LLM_LANES_OPENAI_API_KEY": "sk-test-openai-0000",
                    }.items()
                }
            )
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.celery_app",
                    "worker",
                    "-Q",
                    f"{names.QUEUE_PROMOTED},{names.QUEUE_INTERACTIVE}",
                    "-P",
                    "threads",
                    "-c",
                    "1",
                    "--without-mingle",
                    "--without-gossip",
                    "-l",
                    "WARNING",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                every = [*backlog, *urgent]
                wait_for(
                    lambda: all(rt.store.get_job(j).state is JobState.DONE for j in every),  # type: ignore[union-attr]
                    timeout=60,
                    what="all seven jobs done",
                )
            finally:
                worker.terminate()
                worker.wait(timeout=30)
            order = [
                e["client_request_id"]
                for e in simulator.requests()
                if e.get("client_request_id") in every
            ]
            assert set(order[:3]) == set(urgent), order
            for job_id in urgent:
                result = rt.store.get_job(job_id).result  # type: ignore[union-attr]
                assert result["provenance"]["lane"] == "promoted"  # type: ignore[index]
        finally:
            set_runtime(None)
