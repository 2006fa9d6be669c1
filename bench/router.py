"""Router decision time: median and p99 per decision, beside same-run baselines.

The router runs before every interactive call, so it must cost next to nothing. The machine
is noisy, so each timing is also given as a ratio to a trivial function call and a dict
lookup measured in the same run.

    .venv/bin/python bench/router.py [--n 20000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanes.classifier import TextClassifier
from lanes.routing import Router, RoutingInput, TierLadder

LADDER = TierLadder.from_data(
    [
        {"name": "cheap", "provider": "openai", "model": "small"},
        {"name": "mid", "provider": "anthropic", "model": "medium"},
        {"name": "top", "provider": "openai", "model": "large"},
    ]
)
PROMPTS = [
    "What is the capital of France?",
    "Summarise this support ticket in two sentences: the customer says the export button "
    "does nothing on Safari 17 and they need the CSV for their monthly report by Friday. " * 3,
    "Write a Python function that merges two sorted lists.\n```python\ndef merge(a, b):\n"
    "    pass\n```\nExplain why your solution is O(n).",
    "Prove that the sum of the first n odd numbers is n^2, step by step. 1 + 3 + 5 = 9.",
    "Translate to German: 'The meeting moved to Thursday at 3pm; bring the Q3 numbers.'",
    (
        "You are a helpful assistant for ACME Corp. Policies: be polite, never promise refunds, "
        "escalate legal questions. " * 20
    )
    + "Customer: where is my order #18231?",
]


def _noop(x: object) -> object:
    return x


def timings(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn(i)
        out.append((clock() - t0) / 1000)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": statistics.median(ordered),
        "p99_us": ordered[int(0.99 * (len(ordered) - 1))],
    }


def train_classifier() -> TextClassifier:
    texts = [p + f" v{i}" for i, p in enumerate(PROMPTS * 50)]
    labels = [float(i % len(PROMPTS) in (2, 3)) for i in range(len(texts))]
    return TextClassifier.fit(texts, labels, min_df=1, steps=100)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    inputs = [RoutingInput(prompt=p, feature="chat") for p in PROMPTS]
    k = len(inputs)
    rules = Router(LADDER, feature_tiers={"legal": "top"})
    with_clf = Router(LADDER, classifier=train_classifier(), threshold=0.5)
    table = {"chat": 1, "legal": 2}
    cases: dict[str, Callable[[int], object]] = {
        "noop_call": lambda i: _noop(i),
        "dict_lookup": lambda i: table.get("chat"),
        "route_rules": lambda i: rules.route(inputs[i % k]),
        "route_rules+classifier": lambda i: with_clf.route(inputs[i % k]),
    }
    for fn in cases.values():  # warm up
        timings(fn, 500)
    result = {name: summary(timings(fn, args.n)) for name, fn in cases.items()}
    base_call = result["noop_call"]["median_us"]
    base_dict = result["dict_lookup"]["median_us"]
    for r in result.values():
        r["x_noop_call"] = r["median_us"] / base_call
        r["x_dict_lookup"] = r["median_us"] / base_dict
    reasons = sorted({rules.route(i).reason for i in inputs})
    if args.json:
        print(json.dumps({"n": args.n, "results": result, "reasons_seen": reasons}, indent=2))
        return
    print(f"router decision time, n={args.n} per case, {k} prompts ({reasons})")
    print(f"{'case':26s} {'median us':>10s} {'p99 us':>10s} {'x noop call':>12s} {'x dict':>9s}")
    for name, r in result.items():
        print(
            f"{name:26s} {r['median_us']:10.2f} {r['p99_us']:10.2f} "
            f"{r['x_noop_call']:12.1f} {r['x_dict_lookup']:9.1f}"
        )


if __name__ == "__main__":
    main()
