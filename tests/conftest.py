"""Fixtures on real services: a private Redis, the simulator over loopback HTTP, a real
Celery worker (threads pool), SQLite files and a private PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres_available, private_postgres_db

TEST_KEYS = {
    "openai_api_key": "sk-test-openai-0000",
    "anthropic_api_key": "sk-ant-test-0000",
    "azure_api_key": "azure-test-key-0000",
}


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """LLM_LANES_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/9) or a private redis-server."""
    url = os.environ.get("LLM_LANES_TEST_REDIS_URL")
    if url:
        yield url
        return
    from workers.embedded import start_private_redis

    with start_private_redis(use_env=False) as private:
        yield private.url


@pytest.fixture(scope="session")
def simulator() -> Iterator[object]:
    from workers.simulator.server import SimulatorServer

    server = SimulatorServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI but is not reachable")
        pytest.skip("PostgreSQL not reachable")
    with private_postgres_db() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lanes.db'}"
    url: str = request.getfixturevalue("postgres_url")
    # Each test gets clean tables on the shared private PostgreSQL database.
    from sqlmodel import SQLModel

    from storage.engine import get_engine

    engine = get_engine(url)
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    return url


@pytest.fixture(scope="session")
def celery_app_configured(redis_url: str, simulator: object):  # type: ignore[no-untyped-def]
    from lanes.settings import load_settings
    from workers.celery_app import app, configure

    settings = load_settings(redis_url=redis_url, **_sim_settings(simulator))
    configure(app, settings)
    import workers.realtime
    import workers.watchdog

    with contextlib.suppress(ImportError):
        import workers.accumulator  # noqa: F401
    return app


def _sim_settings(sim: object) -> dict[str, object]:
    return {
        "openai_base_url": sim.openai_base_url,  # type: ignore[attr-defined]
        "anthropic_base_url": sim.anthropic_base_url,  # type: ignore[attr-defined]
        "azure_endpoint": sim.azure_endpoint,  # type: ignore[attr-defined]
        "openai_compatible_base_url": sim.openai_base_url,  # type: ignore[attr-defined]
        "provider_timeout_s": 10.0,
        "provider_max_retries": 2,
        **TEST_KEYS,
    }


@pytest.fixture(scope="session")
def celery_worker(celery_app_configured):  # type: ignore[no-untyped-def]
    from celery.contrib.testing.worker import start_worker

    from lanes import names

    queues = list(names.REALTIME_QUEUES)
    if "lanes.accumulate" in celery_app_configured.tasks:
        queues.append(names.QUEUE_DEFERRABLE)
    with start_worker(
        celery_app_configured,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=queues,
        shutdown_timeout=30,
    ) as worker:
        yield worker


def _install_runtime(app, simulator, redis_url: str, database_url: str):  # type: ignore[no-untyped-def]
    """A runtime on this test's database with empty lane queues and a reset simulator,
    installed for producers and the in-process worker alike."""
    import redis

    from lanes import names
    from lanes.settings import load_settings
    from workers.runtime import Runtime, set_runtime

    settings = load_settings(
        redis_url=redis_url, database_url=database_url, **_sim_settings(simulator)
    )
    client = redis.Redis.from_url(redis_url)
    client.delete(*names.ALL_QUEUES)
    client.close()
    simulator.reset()
    rt = Runtime(settings=settings, app=app)
    set_runtime(rt)
    return rt


@pytest.fixture
def lane_runtime(celery_app_configured, simulator, database_url, redis_url):  # type: ignore[no-untyped-def]
    """On SQLite and on PostgreSQL (parametrised through `database_url`)."""
    from workers.runtime import set_runtime

    yield _install_runtime(celery_app_configured, simulator, redis_url, database_url)
    set_runtime(None)


@pytest.fixture
def sqlite_runtime(tmp_path, celery_app_configured, simulator, redis_url):  # type: ignore[no-untyped-def]
    """Like lane_runtime, on SQLite only (for tests that need not run on both engines)."""
    from workers.runtime import set_runtime

    url = f"sqlite:///{tmp_path / 'l.db'}"
    yield _install_runtime(celery_app_configured, simulator, redis_url, url)
    set_runtime(None)
