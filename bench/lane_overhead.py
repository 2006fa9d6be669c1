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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=int, default=200, help="tasks sent one at a time")
    ap.add_argument(
        "--rates",
        default="100,200",
        help="comma-separated steady rates (tasks/s); 200 is the target, lower ones show "
        "where this machine stops keeping up",
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the load phase")
    ap.add_argument(
        "--workers", type=int, default=2, help="realtime worker processes (one per core)"
    )
    ap.add_argument("--json", action="store_true", help="print only the JSON report")
    args = ap.parse_args()

    import os
    import subprocess

    import redis as redis_lib

    say = (lambda *_a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    from workers.embedded import free_port, start_private_redis

    tmp = tempfile.mkdtemp(prefix="lanes-bench-")
    redis = start_private_redis(use_env=False)
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "LLM_LANES_REDIS_URL": redis.url,
            "LLM_LANES_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "LLM_LANES_OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "LLM_LANES_OPENAI_API_KEY": "sk-bench-local",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        }
    )
    os.environ.update(env)
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    try:
        # The provider is another process, as a real provider would be remote.
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "workers.simulator", "--port", str(port), "--no-batch"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        sim = SimLog(f"http://127.0.0.1:{port}")
        _wait(sim.healthy, timeout=30)
        # Realtime worker process(es) serve both the bare task and the lane (same queue).
        for n in range(args.workers):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "workers.celery_app",
                        "worker",
                        "-Q",
                        "lanes.promoted,lanes.interactive",
                        "-P",
                        "threads",
                        "-c",
                        str(max(2, 8 // args.workers)),
                        "-n",
                        f"bench{n}@%h",
                        "-I",
                        "bench_noop",
                        "--without-mingle",
                        "--without-gossip",
                        "-l",
                        "ERROR",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        import lanes
        from workers.celery_app import app

        client = redis_lib.Redis.from_url(redis.url)
        _wait(lambda: len(app.control.ping(timeout=0.5) or []) >= args.workers, timeout=60)
        task = {
            "messages": [{"role": "user", "content": "ping"}],
            "max_output_tokens": 8,
            "provider": "openai",
            "model": "gpt-5.4-nano",
            "feature": "bench",
        }
        say("warming up both paths")
        _bare(app, client, 30, rate=None)
        _lanes(lanes, sim, task, 30, rate=None)
        rates = [float(r) for r in args.rates.split(",") if r]
        phases = [("idle", None, args.idle)] + [
            (f"{r:.0f}/s", r, int(r * args.seconds)) for r in rates
        ]
        for phase, rate, count in phases:
            say(f"[{phase}] bare celery: {count} tasks" + (f" at {rate:.0f}/s" if rate else ""))
            bare = _bare(app, client, count, rate=rate)
            say(f"[{phase}] llm-lanes:   {count} tasks" + (f" at {rate:.0f}/s" if rate else ""))
            lane = _lanes(lanes, sim, task, count, rate=rate)
            results[phase] = _summary(bare, lane)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        redis.stop()
    report = {
        "benchmark": "lane_overhead",
        "unit": "ms",
        "target": "lanes p99 <= 2x bare p99",
        **results,
    }
    if not args.json:
        _table(results)
    print(json.dumps(report))
    return 0


class SimLog:
    """Reads the simulator's request log over its control API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cursor = 0

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/_sim/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def new_entries(self) -> list[dict[str, Any]]:
        import urllib.request

        with urllib.request.urlopen(
            f"{self.url}/_sim/requests?since={self.cursor}", timeout=5
        ) as r:
            data = json.loads(r.read())
        entries = data["requests"] if isinstance(data, dict) else data
        if entries:
            self.cursor = entries[-1]["seq"]
        return entries


def _bare(app: Any, client: Any, count: int, *, rate: float | None) -> list[float]:
    sent: dict[str, float] = {}
    t_next = time.perf_counter()
    for i in range(count):
        if rate:
            t_next += 1 / rate
            _pace(t_next)
        key = f"b{time.time_ns()}-{i}"
        sent[key] = time.time()
        app.send_task(
            "bench.noop", args=[key], queue="lanes.interactive", routing_key="lanes.interactive"
        )
        if rate is None:
            _wait(lambda k=key: client.hexists("bench:noop", k))
    _wait(
        lambda: (
            client.hlen("bench:noop") >= len(sent)
            and all(v is not None for v in client.hmget("bench:noop", list(sent)))
        ),
        timeout=120,
    )
    started = dict(zip(sent, client.hmget("bench:noop", list(sent)), strict=True))
    client.delete("bench:noop")
    return [(float(started[k]) - sent[k]) * 1000 for k in sent]


def _lanes(
    lanes: Any, sim: SimLog, task: dict[str, Any], count: int, *, rate: float | None
) -> list[float]:
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    def collect() -> None:
        for entry in sim.new_entries():
            if entry.get("client_request_id"):
                seen.setdefault(entry["client_request_id"], entry["received_at"])

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
        "bare_celery": {
            "p50": round(b50, 3),
            "p99": round(b99, 3),
            "mean": round(statistics.fmean(bare), 3),
        },
        "llm_lanes": {
            "p50": round(l50, 3),
            "p99": round(l99, 3),
            "mean": round(statistics.fmean(lane), 3),
        },
        "ratio_p50": round(l50 / b50, 2),
        "ratio_p99": round(l99 / b99, 2),
        "meets_target": l99 <= 2 * b99,
    }


def _table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="enqueue -> start of work (ms): llm-lanes vs bare Celery, same run")
    for col in (
        "phase",
        "n",
        "bare p50",
        "bare p99",
        "lanes p50",
        "lanes p99",
        "p50 x",
        "p99 x",
        "p99 <= 2x",
    ):
        t.add_column(col, justify="right")
    for phase, r in results.items():
        t.add_row(
            phase,
            str(r["n"]),
            f"{r['bare_celery']['p50']:.2f}",
            f"{r['bare_celery']['p99']:.2f}",
            f"{r['llm_lanes']['p50']:.2f}",
            f"{r['llm_lanes']['p99']:.2f}",
            f"{r['ratio_p50']:.2f}",
            f"{r['ratio_p99']:.2f}",
            "yes" if r["meets_target"] else "NO",
        )
    Console(stderr=True).print(t)


if __name__ == "__main__":
    raise SystemExit(main())
