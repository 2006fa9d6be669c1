"""`python -m workers.simulator`: run the provider simulator in the foreground."""

from __future__ import annotations

import argparse
import logging

from workers.simulator.config import SimConfig
from workers.simulator.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workers.simulator", description="Local OpenAI/Anthropic provider simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="default wall latency of a realtime call"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="virtual seconds per wall second (batch windows, cache TTLs)",
    )
    parser.add_argument("--no-batch", action="store_true", help="serve realtime routes only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    config = SimConfig(default_latency_ms=args.latency_ms, time_scale=args.time_scale)
    serve(host=args.host, port=args.port, config=config, batch=not args.no_batch)


if __name__ == "__main__":
    main()
