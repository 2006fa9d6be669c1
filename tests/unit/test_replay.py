"""Replay metrics on a hand-made data set with hand-computed numbers, plus the real replay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lanes.classifier import TextClassifier
from lanes.errors import ReplayDataError
from lanes.replay import (
    Point,
    cascade,
    choose_cheap,
    measure,
    oracle,
    pareto,
    pick,
    render,
    route,
    run_replay,
    tabulate,
)
from lanes.replay_data import Outcome, Query, ReplayDataset, load_shadow_log

REPLAY_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "replay-data"
MODELS = ["cheap", "verifier", "best"]
C, V, B = 0, 1, 2


def q(qid: str, prompt: str, answers: tuple[str, str, str], scores: tuple[int, int, int]) -> Query:
    costs = (1.0, 2.0, 10.0)
    outcomes = {
        m: Outcome(score=s, cost_usd=c, text=a)
        for m, a, s, c in zip(MODELS, answers, scores, costs, strict=True)
    }
    return Query(qid=qid, prompt=prompt, task="mc", answer_kind="choice", outcomes=outcomes)


# q1: cheap right, verifier agrees -> accepted.  q2: cheap wrong, verifier disagrees -> escalate.
# q3: cheap malformed -> escalate without asking the verifier.  q4: both agree on a wrong answer.
DATA = ReplayDataset(
    name="hand",
    models=MODELS,
    queries=[
        q("q1", "x" * 10, ("A", "A", "A"), (1, 1, 1)),
        q("q2", "x" * 20, ("B", "C", "C"), (0, 1, 1)),
        q("q3", "x" * 30, ("Rachel", "A", "A"), (0, 1, 1)),
        q("q4", "x" * 40, ("D", "D", "A"), (0, 0, 1)),
    ],
)
NONE = np.zeros(4, dtype=bool)


@pytest.fixture(scope="module")
def table():  # type: ignore[no-untyped-def]
    return tabulate(DATA, MODELS)


def test_tabulate_runs_the_checks(table) -> None:  # type: ignore[no-untyped-def]
    assert table.passes[:, C].tolist() == [True, True, False, True]
    assert table.agree(C, V).tolist() == [True, False, False, True]


def test_baselines(table) -> None:  # type: ignore[no-untyped-def]
    cheap = measure("c", route(table, NONE, cheap=C, best=B), threshold=None, table=table, best=B)
    assert (cheap.quality, cheap.cost) == (0.25, 0.1)  # 1/4 of the score, 4/40 of the cost
    best = measure("b", route(table, ~NONE, cheap=C, best=B), threshold=None, table=table, best=B)
    assert (best.quality, best.cost, best.accuracy) == (1.0, 1.0, 1.0)
    orc = measure("o", oracle(table, cheap=C, best=B), threshold=None, table=table, best=B)
    assert (orc.quality, orc.cost) == (1.0, 31 / 40)  # 1 + 10 + 10 + 10


def test_length_rule(table) -> None:  # type: ignore[no-untyped-def]
    p = measure(
        "len", route(table, table.lengths >= 25, cheap=C, best=B), threshold=25, table=table, best=B
    )
    assert (p.quality, p.cost) == (0.75, 22 / 40)  # q3, q4 to best: 1+1+10+10


def test_cascade_with_checks_only(table) -> None:  # type: ignore[no-untyped-def]
    p = measure(
        "cas",
        cascade(table, NONE, ladder=[C, B], verifier=None),
        threshold=None,
        table=table,
        best=B,
    )
    # q1 1 (right), q2 1 (wrong), q3 1+10 (right), q4 1 (wrong)
    assert (p.quality, p.cost, p.escalated) == (0.5, 14 / 40, 0.25)


def test_cascade_with_verifier_pays_for_every_call(table) -> None:  # type: ignore[no-untyped-def]
    p = measure(
        "cas", cascade(table, NONE, ladder=[C, B], verifier=V), threshold=None, table=table, best=B
    )
    # q1 1+2, q2 1+2+10, q3 1+10 (no verifier call), q4 1+2 (accepted, wrong)
    assert (p.quality, p.cost, p.escalated) == (0.75, 30 / 40, 0.5)


def test_cascade_classifier_starts_high(table) -> None:  # type: ignore[no-untyped-def]
    high = np.array([False, True, False, False])
    p = measure(
        "cas", cascade(table, high, ladder=[C, B], verifier=V), threshold=0.5, table=table, best=B
    )
    assert (p.quality, p.cost) == (0.75, 27 / 40)  # q2 costs 10 instead of 13


def test_three_rung_ladder(table) -> None:  # type: ignore[no-untyped-def]
    p = measure(
        "cas",
        cascade(table, NONE, ladder=[C, V, B], verifier=None),
        threshold=None,
        table=table,
        best=B,
    )
    # q1 cheap 1; q2 cheap 1 accepted (well-formed); q3 1 + verifier-model 2 accepted; q4 1
    assert (p.quality, p.cost) == (0.5, 6 / 40)


def test_choose_cheap_rule(table) -> None:  # type: ignore[no-untyped-def]
    # accuracies: cheap .25, verifier .75, best 1.0 -> cheapest with >= 0.7 is the verifier
    assert choose_cheap(table, best=B) == V
    assert choose_cheap(table, best=B, rule=0.2) == C


def pt(quality: float, cost: float) -> Point:
    return Point("p", None, quality, cost, 0.0, 0.0)


def test_pick_balances_margins_and_falls_back_to_nearest() -> None:
    points = [pt(0.96, 0.39), pt(0.97, 0.30), pt(0.99, 0.45)]
    assert pick(points, min_quality=0.95, max_cost=0.40) == pt(0.97, 0.30)
    outside = [pt(0.90, 0.20), pt(0.93, 0.42)]  # short by .05 vs by .02 on both
    assert pick(outside, min_quality=0.95, max_cost=0.40) == pt(0.93, 0.42)


def test_pareto() -> None:
    front = pareto([pt(0.9, 0.5), pt(0.8, 0.2), pt(0.85, 0.6), pt(1.0, 1.0)])
    assert front == [pt(0.8, 0.2), pt(0.9, 0.5), pt(1.0, 1.0)]


# -- shadow-log format ----------------------------------------------------------------------


def shadow_line(i: int) -> str:
    hard = i % 5 == 0
    prompt = ("prove the hard theorem " if hard else "say hello ") + str(i)
    return json.dumps(
        {
            "job_id": f"job-{i}",
            "prompt": prompt,
            "feature": "chat",
            "attempts": [
                {
                    "tier": "top",
                    "model": "big",
                    "text": "answer",
                    "finish_reason": "stop",
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cost_usd": "0.01",
                    "accepted": True,
                    "correct": None,
                },
                {
                    "tier": "cheap",
                    "model": "small",
                    "text": "wrong" if hard else "Answer ",
                    "finish_reason": "stop",
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cost_usd": "0.001",
                    "accepted": not hard or i % 2 == 1,
                    "correct": None,
                },
            ],
        }
    )


def test_shadow_log_round_trip(tmp_path: Path) -> None:
    log = tmp_path / "shadow.jsonl"
    log.write_text("\n".join(shadow_line(i) for i in range(90)) + "\n")
    splits = load_shadow_log(log)
    queries = splits["train"].queries + splits["test"].queries
    assert len(queries) == 90 and set(splits["train"].models) == {"big", "small"}
    by_id = {x.qid: x for x in queries}
    assert by_id["job-1"].outcomes["small"].score == 1.0  # agrees with the answer shown
    assert by_id["job-5"].outcomes["small"].score == 0.0
    assert by_id["job-10"].outcomes["small"].accepted is False
    saved = tmp_path / "router.json"
    report = run_replay(
        source=log, folds=2, classifier_steps=50, output_json=True, save_router=saved
    )
    assert 0.0 <= TextClassifier.load(saved).predict_proba("prove the hard theorem") <= 1.0
    assert (report.cheap, report.best) == ("small", "big")
    data = json.loads(render(report))
    assert {r["policy"] for r in data["rows"]} >= {"always-best", "length", "cascade"}


def test_shadow_log_errors_name_the_line(tmp_path: Path) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_text(shadow_line(1) + "\n{oops\n")
    with pytest.raises(ReplayDataError, match=r"bad.jsonl:2: not JSON"):
        load_shadow_log(log)
    with pytest.raises(ReplayDataError, match="not a RouterBench"):
        run_replay(source=tmp_path)


# -- the real data ------------------------------------------------------------------------


@pytest.mark.skipif(
    not (REPLAY_DATA / "routerbench-subset").is_dir(),
    reason=f"replay data not found at {REPLAY_DATA} (shared/ beside the repo)",
)
def test_routerbench_cascade_beats_length_rule_at_equal_or_lower_cost() -> None:
    report = run_replay(source=REPLAY_DATA / "routerbench-subset", folds=3, classifier_steps=100)
    rows = {r.policy: r for r in report.rows}
    assert report.cheap == "mistralai/mixtral-8x7b-chat"
    cas = rows["cascade"]
    # Against every length threshold, measured on test, that costs no more than the cascade.
    affordable = [p for p in report.frontiers["length"] if p.cost <= cas.cost]
    assert affordable and cas.quality > max(p.quality for p in affordable)
    same_budget = rows["length@cascade-cost"]
    assert cas.quality > same_budget.quality
    assert cas.quality >= 0.95 and cas.cost <= 0.40
    assert "cascade" in render(report)
