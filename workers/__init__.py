"""The processes: Celery app, realtime lane, accumulator, watchdog, provider adapters, simulator."""
