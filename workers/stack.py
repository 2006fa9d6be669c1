"""A whole llm-lanes deployment on one machine, for the demo and benchmarks.

Starts a private Redis, the simulator, a realtime worker, a deferrable/control worker and one
beat as real processes (the same commands an operator runs), and stops all it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanes import names
from workers.embedded import PrivateRedis, start_private_redis

SIM_KEYS = {
    "LLM_LANES_OPENAI_API_KEY": "sk-sim-local-openai",
    "LLM_LANES_ANTHROPIC_API_KEY": "sk-ant-sim-local",
    "LLM_LANES_AZURE_API_KEY": "sim-local-azure",
}


@dataclass
class Stack:
    env: dict[str, str]
    redis: PrivateRedis
    simulator: Any
    workdir: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.simulator is not None:
            self.simulator.stop()
        self.redis.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def celery_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", *args]


def start_stack(
    *,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    sim_time_scale: float = 3600.0,
    sim_latency_ms: float | None = None,
    workers: bool = True,
    beat: bool = True,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Stack:
    from workers.simulator.server import SimulatorServer

    workdir = tempfile.mkdtemp(prefix="llm-lanes-stack-")
    progress("starting a private Redis")
    redis = start_private_redis()
    progress("starting the provider simulator")
    sim = _start_simulator(SimulatorServer, time_scale=sim_time_scale, latency_ms=sim_latency_ms)
    env = dict(os.environ)
    env.update(SIM_KEYS)
    env.update(
        {
            "LLM_LANES_REDIS_URL": redis.url,
            "LLM_LANES_DATABASE_URL": database_url or f"sqlite:///{Path(workdir) / 'lanes.db'}",
            "LLM_LANES_OPENAI_BASE_URL": sim.openai_base_url,
            "LLM_LANES_ANTHROPIC_BASE_URL": sim.anthropic_base_url,
            "LLM_LANES_AZURE_ENDPOINT": sim.azure_endpoint,
            "LLM_LANES_HOUSEKEEPING_INTERVAL_S": "1",
        }
    )
    env.update(extra_env or {})
    stack = Stack(env=env, redis=redis, simulator=sim, workdir=workdir)
    try:
        if workers:
            progress("starting workers")
            stack.processes.append(
                _spawn(
                    celery_cmd(
                        "worker",
                        "-Q",
                        ",".join(names.REALTIME_QUEUES),
                        "-P",
                        "threads",
                        "-c",
                        "8",
                        "-n",
                        "realtime@%h",
                        "--without-mingle",
                        "--without-gossip",
                        "-l",
                        "WARNING",
                    ),
                    env,
                    workdir,
                    "realtime",
                )
            )
            stack.processes.append(
                _spawn(
                    celery_cmd(
                        "worker",
                        "-Q",
                        f"{names.QUEUE_DEFERRABLE},{names.QUEUE_CONTROL}",
                        "-P",
                        "threads",
                        "-c",
                        "4",
                        "-n",
                        "deferrable@%h",
                        "--without-mingle",
                        "--without-gossip",
                        "-l",
                        "WARNING",
                    ),
                    env,
                    workdir,
                    "deferrable",
                )
            )
        if beat:
            stack.processes.append(
                _spawn(
                    celery_cmd(
                        "beat",
                        "-s",
                        str(Path(workdir) / "beat-schedule"),
                        "-l",
                        "WARNING",
                    ),
                    env,
                    workdir,
                    "beat",
                )
            )
        if workers:
            _wait_for_workers(env, expected=2)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_simulator(cls: Any, *, time_scale: float, latency_ms: float | None) -> Any:
    from workers.simulator.config import SimConfig

    kwargs: dict[str, Any] = {"time_scale": time_scale}
    if latency_ms is not None:
        kwargs["default_latency_ms"] = latency_ms
    server = cls(config=SimConfig(**kwargs))
    server.start()
    return server


def _spawn(cmd: list[str], env: dict[str, str], workdir: str, name: str) -> subprocess.Popen[bytes]:
    log = open(Path(workdir) / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())


def _wait_for_workers(env: dict[str, str], *, expected: int, timeout_s: float = 60.0) -> None:
    from celery import Celery

    probe = Celery("probe", broker=env["LLM_LANES_REDIS_URL"], set_as_current=False)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            replies = probe.control.ping(timeout=0.5) or []
            if len(replies) >= expected:
                return
        raise RuntimeError(f"workers did not start within {timeout_s}s (see the stack logs)")
    finally:
        probe.close()
