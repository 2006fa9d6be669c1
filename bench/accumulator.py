"""How fast the flusher packs buffered tasks into batch files, and whether memory stays flat.

For each size (10k, 100k, 1M buffered deferrable tasks in a SQLite file, one OpenAI group):

- pack: what `flush()` does before the network — a `Batch` row per batch, members claimed
  buffered → submitted in chunks (conditional updates), their lines streamed (`yield_per`)
  into a temp JSONL file — until the buffer is empty (50,000 lines per batch);
- baseline: in the same run, the same lines read with a bare sqlite3 cursor and written to a
  file: the cost of the bytes alone, no claims, no state.

Each phase runs in a FRESH subprocess (the database is built by a third one), so the peak RSS
it reports (getrusage high-water minus the RSS before the phase) is that phase's own.
Targets: >= 20,000 tasks/s packed; pack peak memory at 1M within 50 MB of its peak at 10k.

    python bench/accumulator.py [--sizes 10000,100000,1000000] [--json] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "gpt-5.4-mini"
ENDPOINT = "/v1/chat/completions"
TARGET_RATE = 20_000
TARGET_GROWTH_MB = 50


def say(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def rss_mb() -> float:
    """Current RSS (Linux /proc), to subtract from the high-water mark."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- phase 1: build the buffered backlog (not timed) -------------------------------------------


def build(db: Path, n: int) -> None:
    from sqlalchemy import insert

    from lanes.settings import load_settings
    from lanes.task import LLMTask
    from storage.batches import BatchItem, SqlBatchStore
    from storage.engine import get_engine
    from storage.models import Job
    from workers.providers.registry import ProviderRegistry
    from workers.requests import RequestBuilder

    engine = get_engine(f"sqlite:///{db}")
    SqlBatchStore(engine)
    settings = load_settings(
        openai_api_key="sk-bench-0000", openai_base_url="http://127.0.0.1:9/v1"
    )
    adapter = ProviderRegistry(settings).get("openai")
    builder = RequestBuilder()
    now = datetime.now(UTC)
    chunk = 20_000
    for start in range(0, n, chunk):
        jobs, items = [], []
        for i in range(start, min(n, start + chunk)):
            job_id = uuid.uuid4().hex
            task = LLMTask(
                messages=[
                    {
                        "role": "user",
                        "content": f"Summarise support ticket #{i}: the "
                        "customer cannot log in after the password reset email.",
                    }
                ],
                system="You are a concise support analyst.",
                lane="deferrable",
                provider="openai",
                model=MODEL,
                max_output_tokens=64,
                max_delay_s=86_400,
                feature="digest",
            )
            body = adapter.build_body(builder.build(task, provider="openai", model=MODEL))
            line = json.dumps(
                {"custom_id": job_id, "method": "POST", "url": ENDPOINT, "body": body},
                separators=(",", ":"),
            )
            jobs.append(
                {
                    "id": job_id,
                    "state": "buffered",
                    "lane": "deferrable",
                    "feature": "digest",
                    "payload": task.model_dump(mode="json"),
                    "deadline": now + timedelta(seconds=86_400 + i),
                    "created_at": now,
                    "updated_at": now,
                    "publish_count": 1,
                }
            )
            items.append(
                {
                    "job_id": job_id,
                    "provider": "openai",
                    "endpoint": ENDPOINT,
                    "model": MODEL,
                    "line": line,
                    "bytes": len(line.encode()),
                    "buffered_at": now,
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(Job), jobs)
            conn.execute(insert(BatchItem), items)
        say(f"  building {n:,}: {min(n, start + chunk):,} rows")


# -- phase 2: pack (what flush does before the provider call) ---------------------------------


def pack(db: Path, trace: bool) -> dict[str, Any]:
    from lanes.flush import BatchLimits, GroupKey
    from storage.batches import SqlBatchStore
    from storage.engine import get_engine
    from workers.batch_submit import new_batch_id, write_jsonl

    bs = SqlBatchStore(get_engine(f"sqlite:///{db}"))
    key = GroupKey("openai", ENDPOINT, MODEL)
    limits = BatchLimits(50_000, 200 * 1024 * 1024)
    before = rss_mb()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    tasks = batches = total_bytes = 0
    while True:
        batch = bs.new_batch(new_batch_id(), key=key, reason="bench")
        claimed, _ = bs.claim(batch.id, key=key, limits=limits)
        if claimed == 0:
            bs.delete_batch(batch.id)
            break
        path, lines, size = write_jsonl(bs, batch.id)
        path.unlink()
        bs.update_batch(batch.id, state="submitted", request_count=lines, bytes=size)
        tasks += lines
        batches += 1
        total_bytes += size
        say(f"  packed batch {batches}: {tasks:,} tasks, {time.perf_counter() - t0:.1f}s")
    seconds = time.perf_counter() - t0
    peak_traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {
        "tasks": tasks,
        "batches": batches,
        "bytes": total_bytes,
        "seconds": seconds,
        "peak_rss_growth_mb": maxrss_mb() - before,
        "tracemalloc_peak_mb": peak_traced,
    }


def baseline(db: Path, trace: bool) -> dict[str, Any]:
    """The same lines, bare cursor → file: the floor any packer pays for the bytes."""
    conn = sqlite3.connect(db)
    before = rss_mb()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    count = size = 0
    fd, name = tempfile.mkstemp(suffix=".jsonl")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        cur = conn.execute("SELECT line FROM lanes_batch_item")
        while rows := cur.fetchmany(2000):
            for (line,) in rows:
                fh.write(line)
                fh.write("\n")
                count += 1
                size += len(line) + 1
    Path(name).unlink()
    seconds = time.perf_counter() - t0
    peak_traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {
        "tasks": count,
        "bytes": size,
        "seconds": seconds,
        "peak_rss_growth_mb": maxrss_mb() - before,
        "tracemalloc_peak_mb": peak_traced,
    }


# -- driver -----------------------------------------------------------------------------------


def child(phase: str, db: Path, n: int, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", phase, "--db", str(db), "--n", str(n)]
    if trace:
        cmd.append("--tracemalloc")
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also report tracemalloc peaks (slows the timed phases)",
    )
    ap.add_argument("--phase", choices=["build", "pack", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:
        db = Path(args.db)
        if args.phase == "build":
            build(db, args.n)
            print("{}")
        else:
            fn = pack if args.phase == "pack" else baseline
            print(json.dumps(fn(db, args.tracemalloc)))
        return 0

    global say
    if args.json:
        say = lambda *_a: None  # noqa: E731
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    results = []
    with tempfile.TemporaryDirectory(prefix="lanes-bench-acc-") as tmp:
        for n in sizes:
            say(f"size {n:,}")
            db = Path(tmp) / f"buffer-{n}.db"
            child("build", db, n, False)
            base = child("baseline", db, n, args.tracemalloc)
            packed = child("pack", db, n, args.tracemalloc)
            db.unlink()
            results.append(
                {
                    "size": n,
                    "pack_tasks": packed["tasks"],
                    "batches": packed["batches"],
                    "pack_s": round(packed["seconds"], 3),
                    "pack_rate": round(packed["tasks"] / packed["seconds"]),
                    "baseline_s": round(base["seconds"], 3),
                    "baseline_rate": round(base["tasks"] / base["seconds"]),
                    "time_ratio": round(packed["seconds"] / base["seconds"], 2),
                    "pack_peak_mb": round(packed["peak_rss_growth_mb"], 1),
                    "baseline_peak_mb": round(base["peak_rss_growth_mb"], 1),
                    "pack_traced_mb": packed["tracemalloc_peak_mb"]
                    and round(packed["tracemalloc_peak_mb"], 1),
                    "mb_per_batch_file": round(
                        packed["bytes"] / max(1, packed["batches"]) / 2**20, 1
                    ),
                }
            )
    growth = results[-1]["pack_peak_mb"] - results[0]["pack_peak_mb"]
    report = {
        "bench": "accumulator",
        "results": results,
        "min_pack_rate": min(r["pack_rate"] for r in results),
        "peak_growth_mb": round(growth, 1),
        "targets": {"pack_rate": TARGET_RATE, "peak_growth_mb": TARGET_GROWTH_MB},
        "ok": min(r["pack_rate"] for r in results) >= TARGET_RATE and growth <= TARGET_GROWTH_MB,
    }
    if not args.json:
        head = (
            f"{'size':>9} {'batches':>7} {'pack s':>8} {'tasks/s':>9} {'base s':>8} "
            f"{'base/s':>9} {'x base':>7} {'peak MB':>8} {'base MB':>8}"
        )
        print(head)
        for r in results:
            print(
                f"{r['size']:>9,} {r['batches']:>7} {r['pack_s']:>8.2f} {r['pack_rate']:>9,} "
                f"{r['baseline_s']:>8.2f} {r['baseline_rate']:>9,} {r['time_ratio']:>7.2f} "
                f"{r['pack_peak_mb']:>8.1f} {r['baseline_peak_mb']:>8.1f}"
            )
        print(
            f"peak RSS growth {results[0]['size']:,} -> {results[-1]['size']:,}: "
            f"{growth:+.1f} MB (target <= {TARGET_GROWTH_MB}); slowest pack "
            f"{report['min_pack_rate']:,} tasks/s (target >= {TARGET_RATE:,})"
        )
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
