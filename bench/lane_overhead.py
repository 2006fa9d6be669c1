"""What llm-lanes adds in front of a provider call, against bare Celery in the same run.

llm-lanes: time from `enqueue()` to the simulator receiving the HTTP request (validation, the
SQL insert, publish, the worker's claim and load, building the request, the SDK call).
Baseline: a bare Celery no-op task's time from `send_task()` to the task body starting, on the
same Redis, the same worker (threads pool) and the same machine.

Both are measured at idle (one task in flight) and under a steady 200 tasks/s, and printed as
p50/p99 and as ratios to the baseline. Target: lanes p99 within 2x of bare Celery's p99.

    python bench/lane_overhead.py [--idle 200] [--rate 200] [--seconds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=int, default=200, help="tasks sent one at a time")
    ap.add_argument("--rate", type=float, default=200.0, help="tasks/s for the load phase")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the load phase")
    ap.add_argument("--json", action="store_true", help="print only the JSON report")
    args = ap.parse_args()

    from celery.contrib.testing.worker import start_worker
    from kombu import Queue

    import lanes
    from lanes import names
    from lanes.settings import load_settings
    from workers.celery_app import app, configure
    from workers.embedded import start_private_redis
    from workers.runtime import Runtime, set_runtime
    from workers.simulator.server import SimulatorServer

    say = (lambda *_a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    tmp = tempfile.mkdtemp(prefix="lanes-bench-")
    redis = start_private_redis(use_env=False)
    sim = SimulatorServer().start()
    settings = load_settings(
        redis_url=redis.url, database_url=f"sqlite:///{tmp}/bench.db",
        openai_base_url=sim.openai_base_url, openai_api_key="sk-bench", worker_concurrency=8,
    )
    configure(app, settings)
    app.conf.task_queues = [*app.conf.task_queues, Queue("bench.noop", routing_key="bench.noop")]
    started_at: dict[str, float] = {}
    lock = threading.Lock()

    @app.task(name="bench.noop")
    def noop(key: str) -> None:
        now = time.time()
        with lock:
            started_at[key] = now

    import workers.realtime  # noqa: F401

    rt = Runtime(settings=settings, app=app)
    set_runtime(rt)
    rt.store  # create the schema before timing  # noqa: B018
    task = {"messages": [{"role": "user", "content": "ping"}], "max_output_tokens": 8,
            "provider": "openai", "model": "gpt-5.4-nano", "feature": "bench"}
    results: dict[str, Any] = {}
    try:
        with start_worker(app, pool="threads", concurrency=8, perform_ping_check=False,
                          loglevel="ERROR", queues=[*names.REALTIME_QUEUES, "bench.noop"]):
            # Warm both paths (connections, SQLite schema, SDK client).
            _bare(app, started_at, 20, rate=None)
            _lanes(lanes, sim, task, 20, rate=None)
            sim.reset()
            for phase, rate, count in (("idle", None, args.idle),
                                       ("load", args.rate, int(args.rate * args.seconds))):
                say(f"[{phase}] bare celery: {count} tasks" + (f" at {rate:.0f}/s" if rate else ""))
                bare = _bare(app, started_at, count, rate=rate)
                say(f"[{phase}] llm-lanes:   {count} tasks" + (f" at {rate:.0f}/s" if rate else ""))
                lane = _lanes(lanes, sim, task, count, rate=rate)
                results[phase] = _summary(bare, lane)
    finally:
        set_runtime(None)
        sim.stop()
        redis.stop()
    report = {"benchmark": "lane_overhead", "unit": "ms", "target": "lanes p99 <= 2x bare p99",
              **results}
    if not args.json:
        _table(results)
    print(json.dumps(report))
    return 0


def _bare(app: Any, started_at: dict[str, float], count: int, *, rate: float | None) -> list[float]:
    sent: dict[str, float] = {}
    t_next = time.perf_counter()
    for i in range(count):
        if rate:
            t_next += 1 / rate
            _pace(t_next)
        key = f"b{time.time_ns()}-{i}"
        sent[key] = time.time()
        app.send_task("bench.noop", args=[key], queue="bench.noop", routing_key="bench.noop")
        if rate is None:
            _wait(lambda k=key: k in started_at)
    _wait(lambda: all(k in started_at for k in sent), timeout=120)
    return [(started_at[k] - sent[k]) * 1000 for k in sent]


def _lanes(lanes: Any, sim: Any, task: dict[str, Any], count: int, *, rate: float | None) -> list[float]:
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    cursor = [sim.log.last_seq]

    def collect() -> None:
        for entry in sim.log.since(cursor[0]):
            cursor[0] = entry.seq
            if entry.client_request_id:
                seen.setdefault(entry.client_request_id, entry.received_at)

    t_next = time.perf_counter()
    for _ in range(count):
        if rate:
            t_next += 1 / rate
            _pace(t_next)
        t0 = time.time()
        job_id = lanes.enqueue(task).job_id
        sent[job_id] = t0
        if rate is None:
            _wait(lambda j=job_id: (collect(), j in seen)[1])
    _wait(lambda: (collect(), all(j in seen for j in sent))[1], timeout=120)
    return [(seen[j] - sent[j]) * 1000 for j in sent]


def _pace(t_target: float) -> None:
    delay = t_target - time.perf_counter()
    if delay > 0:
        time.sleep(delay)  # pacing the offered load, not waiting on state


def _wait(pred: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark tasks did not complete")
        time.sleep(0.0005)


def _summary(bare: list[float], lane: list[float]) -> dict[str, Any]:
    b50, b99, l50, l99 = pct(bare, 50), pct(bare, 99), pct(lane, 50), pct(lane, 99)
    return {
        "n": len(lane),
        "bare_celery": {"p50": round(b50, 3), "p99": round(b99, 3),
                        "mean": round(statistics.fmean(bare), 3)},
        "llm_lanes": {"p50": round(l50, 3), "p99": round(l99, 3),
                      "mean": round(statistics.fmean(lane), 3)},
        "ratio_p50": round(l50 / b50, 2), "ratio_p99": round(l99 / b99, 2),
        "meets_target": l99 <= 2 * b99,
    }


def _table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="enqueue -> start of work (ms): llm-lanes vs bare Celery, same run")
    for col in ("phase", "n", "bare p50", "bare p99", "lanes p50", "lanes p99", "p50 x", "p99 x",
                "p99 <= 2x"):
        t.add_column(col, justify="right")
    for phase, r in results.items():
        t.add_row(phase, str(r["n"]), f"{r['bare_celery']['p50']:.2f}",
                  f"{r['bare_celery']['p99']:.2f}", f"{r['llm_lanes']['p50']:.2f}",
                  f"{r['llm_lanes']['p99']:.2f}", f"{r['ratio_p50']:.2f}",
                  f"{r['ratio_p99']:.2f}", "yes" if r["meets_target"] else "NO")
    Console(stderr=True).print(t)


if __name__ == "__main__":
    raise SystemExit(main())
