"""The headline replay: cascade vs. baselines on recorded outcomes (no API calls).

RouterBench subset (train on train, measure on test; cheap = cheapest model with at least
70% of the best's train accuracy; best = gpt-4-1106-preview), then GSM8K and MMLU from the
RouteLLM data. Reads ../shared/replay-data beside the repo unless --data says otherwise.

    .venv/bin/python bench/replay.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lanes.replay import render, run_replay  # noqa: E402

SOURCES = {
    "routerbench": "routerbench-subset",
    "gsm8k": "routellm-evals/gsm8k",
    "mmlu": "routellm-evals/mmlu-responses",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "replay-data")
    parser.add_argument("--json", action="store_true", help="JSON only")
    parser.add_argument("--only", choices=sorted(SOURCES))
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"replay data not found at {args.data}")
    reports = {}
    for name, sub in SOURCES.items():
        if args.only and name != args.only:
            continue
        started = time.perf_counter()
        best = "gpt-4-1106-preview"
        report = run_replay(source=args.data / sub, best=best, output_json=args.json)
        reports[name] = report.to_dict() | {"seconds": round(time.perf_counter() - started, 1)}
        if not args.json:
            print(render(report))
    headline = {
        name: {
            r["policy"]: {
                "quality_pct": round(100 * r["quality"], 1),
                "cost_pct": round(100 * r["cost"], 1),
            }
            for r in rep["rows"]
        }
        | {"target_met": rep["target_met"], "chosen": rep["chosen"]}
        for name, rep in reports.items()
    }
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
    else:
        print(json.dumps(headline, indent=2, default=str))


if __name__ == "__main__":
    main()
