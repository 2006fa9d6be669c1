"""Per-process wiring: settings → engine, job store, ledger, prices, providers, Celery app.

Built lazily once per process so importing a module never opens a connection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from celery import Celery

from lanes.ports import SystemClock
from lanes.producer import Producer
from lanes.settings import LanesSettings, get_settings
from storage.engine import get_engine
from storage.jobs import SqlJobStore
from storage.ledger import Ledger, Prices
from workers.providers import ProviderRegistry
from workers.requests import RequestBuilder


@dataclass
class Runtime:
    settings: LanesSettings
    app: Celery

    @cached_property
    def engine(self):  # type: ignore[no-untyped-def]
        return get_engine(self.settings.database_url)

    @cached_property
    def store(self) -> SqlJobStore:
        return SqlJobStore(self.engine)

    @cached_property
    def prices(self) -> Prices | None:
        try:
            from lanes.pricing import PriceTable
        except ImportError:  # pragma: no cover - pricing ships with the package
            return None
        return PriceTable(extra_override_path=self.settings.price_overrides_path)  # type: ignore[return-value]

    @cached_property
    def requests(self) -> RequestBuilder:
        """One per process, so the prompt-reuse intervals it observes pick cache TTLs."""
        return RequestBuilder(prices=self.prices)

    @cached_property
    def cascade(self):  # type: ignore[no-untyped-def]
        """The tiered cascade, when a tier ladder is configured (else None)."""
        if self.settings.tiers is None and self.settings.tiers_file is None:
            return None
        from workers.cascade import CascadeRunner
        from workers.cascade_config import CascadeConfig

        config = CascadeConfig.from_settings(self.settings)
        return None if config is None else CascadeRunner(self, config)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.engine, self.prices)

    @cached_property
    def providers(self) -> ProviderRegistry:
        return ProviderRegistry(self.settings)

    @cached_property
    def publisher(self):  # type: ignore[no-untyped-def]
        from workers.publisher import CeleryPublisher

        return CeleryPublisher(self.app)

    def producer(self) -> Producer:
        return Producer(
            store=self.store,
            publisher=self.publisher,
            clock=SystemClock(),
            default_max_delay_s=self.settings.deferrable_max_delay_s,
        )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            from workers.celery_app import app

            _runtime = Runtime(settings=get_settings(), app=app)
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the process runtime (tests and the embedded demo point it at their services)."""
    global _runtime
    with _lock:
        _runtime = runtime
    from lanes.producer import set_default_producer

    set_default_producer(None if runtime is None else runtime.producer())


def build_producer() -> Producer:
    return get_runtime().producer()
