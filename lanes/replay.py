"""Offline replay: what would a routing or cascade policy have cost, and what quality?

Recorded per-model outcomes (see `lanes.replay_data`) stand in for live calls, so policies
are compared on the same queries with no API spend. Everything a policy learns or tunes (the
cheap tier, the verifier, the classifier, every threshold) is chosen on the train split;
the test split is only measured. Quality and cost are reported as shares of always calling
the best model, which is what the cascade promises to approach at a fraction of the price.

A cascade answers with the cheap model, runs the same acceptance checks the worker runs on
its text (`lanes.checks`, including the well-formed-answer check), optionally asks a second
cheap model and accepts only if their extracted answers agree, and escalates otherwise; it
pays for every call it makes. A classifier may send a prompt straight to the top instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lanes.checks import Attempt, default_checks, evaluate, extract_answer
from lanes.classifier import TextClassifier
from lanes.errors import ReplayDataError
from lanes.replay_data import ReplayDataset, load_source
from lanes.replay_report import Point, ReplayReport
from lanes.replay_report import render as render

POLICIES = ("always-cheap", "always-best", "oracle", "length", "classifier", "cascade")
COMPARABLE = ("choice", "final_number")
"""Answer kinds two models' answers can be compared on (code cannot, cheaply)."""
CHEAP_RULE = 0.7
N_THRESHOLDS = 40

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]


@dataclass
class Table:
    """Outcomes of a split as arrays (queries x models), so a policy is a few numpy ops."""

    models: list[str]
    score: Array
    cost: Array
    passes: Mask
    """The model's answer passes the local checks (what the cascade sees live)."""
    answers: list[list[str | None]]
    comparable: Mask
    lengths: Array
    prompts: list[str]

    _agree: dict[tuple[int, int], Mask] = field(default_factory=dict)

    def agree(self, a: int, b: int) -> Mask:
        """Both answers extracted and equal; True where answers cannot be compared."""
        if (a, b) not in self._agree:
            same = np.array([r[a] is not None and r[a] == r[b] for r in self.answers], dtype=bool)
            self._agree[a, b] = np.where(self.comparable, same, True)
        return self._agree[a, b]


def tabulate(ds: ReplayDataset, models: list[str]) -> Table:
    n, m = len(ds.queries), len(models)
    score, cost = np.zeros((n, m)), np.zeros((n, m))
    passes = np.ones((n, m), dtype=bool)
    answers: list[list[str | None]] = []
    checks: dict[str | None, list[Any]] = {}
    for i, q in enumerate(ds.queries):
        row: list[str | None] = []
        for j, name in enumerate(models):
            o = q.outcomes[name]
            score[i, j], cost[i, j] = o.score, o.cost_usd
            if o.accepted is not None:
                passes[i, j] = o.accepted
            elif o.text is not None:
                chain = checks.setdefault(
                    q.answer_kind, default_checks(answer_format=q.answer_kind)
                )
                passes[i, j] = evaluate(Attempt(text=o.text), chain).ok
            kind_ok = q.answer_kind in COMPARABLE and o.text is not None
            row.append(extract_answer(q.answer_kind, o.text) if kind_ok else None)  # type: ignore[arg-type]
        answers.append(row)
    return Table(
        models=models,
        score=score,
        cost=cost,
        passes=passes,
        answers=answers,
        comparable=np.array([q.answer_kind in COMPARABLE for q in ds.queries], dtype=bool),
        lengths=np.array([len(q.prompt) for q in ds.queries], dtype=np.float64),
        prompts=[q.prompt for q in ds.queries],
    )


# -- policies: each gives per-query (score, cost, escalated) ------------------------------


def route(t: Table, high: Mask, *, cheap: int, best: int) -> tuple[Array, Array, Mask]:
    """A router: one call, to best where `high`, else to cheap."""
    col = np.where(high, best, cheap)
    rows = np.arange(len(col))
    return t.score[rows, col], t.cost[rows, col], np.zeros(len(col), dtype=bool)


def oracle(t: Table, *, cheap: int, best: int) -> tuple[Array, Array, Mask]:
    return route(t, t.score[:, cheap] < t.score[:, best], cheap=cheap, best=best)


def cascade(
    t: Table, high: Mask, *, ladder: list[int], verifier: int | None
) -> tuple[Array, Array, Mask]:
    """Climb `ladder` until an answer passes the checks (and agrees with the verifier's)."""
    top = ladder[-1]
    score, cost = np.zeros(len(high)), np.zeros(len(high))
    done = high.copy()
    score[high], cost[high] = t.score[high, top], t.cost[high, top]
    escalated = np.zeros(len(high), dtype=bool)
    for rung in ladder[:-1]:
        active = ~done
        cost[active] += t.cost[active, rung]
        ok = t.passes[:, rung].copy()
        if verifier is not None:
            asked = active & ok & t.comparable
            cost[asked] += t.cost[asked, verifier]
            ok &= t.agree(rung, verifier)
        accept = active & ok
        score[accept] = t.score[accept, rung]
        escalated |= active & ~ok
        done |= accept
    rest = ~done
    cost[rest] += t.cost[rest, top]
    score[rest] = t.score[rest, top]
    return score, cost, escalated


def measure(
    policy: str,
    outcome: tuple[Array, Array, Mask],
    *,
    threshold: float | None,
    table: Table,
    best: int,
) -> Point:
    score, cost, escalated = outcome
    best_score, best_cost = float(table.score[:, best].sum()), float(table.cost[:, best].sum())
    return Point(
        policy=policy,
        threshold=threshold,
        quality=float(score.sum()) / best_score if best_score else float("nan"),
        cost=float(cost.sum()) / best_cost if best_cost else float("nan"),
        accuracy=float(score.mean()),
        cost_per_query_usd=float(cost.mean()),
        escalated=float(escalated.mean()),
    )


# -- choosing on train --------------------------------------------------------------------


def slack(p: Point, *, min_quality: float, max_cost: float) -> float:
    """How far inside the target box (both margins positive) or outside it a point is."""
    return min(p.quality - min_quality, max_cost - p.cost)


def pick(points: list[Point], *, min_quality: float, max_cost: float) -> Point:
    """The point with the most balanced margin to the target; outside it, the nearest."""
    return max(points, key=lambda p: slack(p, min_quality=min_quality, max_cost=max_cost))


def pareto(points: list[Point]) -> list[Point]:
    """Points no other point beats on both quality and cost, cheapest first."""
    front: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.quality)):
        if not front or p.quality > front[-1].quality:
            front.append(p)
    return front


def choose_cheap(t: Table, *, best: int, rule: float = CHEAP_RULE) -> int:
    """Cheapest model at least `rule` times as accurate as the best (train numbers)."""
    acc, cost = t.score.mean(axis=0), t.cost.mean(axis=0)
    eligible = [j for j in range(len(t.models)) if acc[j] >= rule * acc[best] and j != best]
    if not eligible:
        return best
    return min(eligible, key=lambda j: cost[j])


def thresholds(values: Array) -> list[float]:
    qs = np.quantile(values, np.linspace(0, 1, N_THRESHOLDS + 1)) if len(values) else np.zeros(0)
    return sorted({float(v) for v in qs} | {float("inf")})


def _common_models(splits: dict[str, ReplayDataset]) -> tuple[list[str], list[str]]:
    """Models recorded for (nearly) every query; queries missing one of them are dropped."""
    queries = [q for ds in splits.values() for q in ds.queries]
    order = splits["train"].models
    counts = {m: sum(m in q.outcomes for q in queries) for m in order}
    keep = [m for m in order if counts[m] >= 0.9 * len(queries)]
    if len(keep) < 2:
        raise ReplayDataError("need at least two models recorded for (nearly) every query")
    notes = []
    for name, ds in splits.items():
        before = len(ds.queries)
        ds.queries = [q for q in ds.queries if all(m in q.outcomes for m in keep)]
        if len(ds.queries) < before:
            notes.append(f"{name}: {before - len(ds.queries)} queries lacked a model, dropped")
    return keep, notes


def run_replay(
    *,
    source: str | Path,
    policy: str = "all",
    best: str | None = None,
    cheap: str | None = None,
    min_quality: float = 0.95,
    max_cost: float = 0.40,
    folds: int = 5,
    classifier_steps: int = 300,
    verifiers: bool = True,
    save_router: str | Path | None = None,
    output_json: bool = False,
) -> ReplayReport:
    """Train on the train split, pick operating points on it, measure on the test split.

    `policy` filters the rows shown ("all" or one of POLICIES); the baselines are always
    computed because every number is relative to always-best.
    """
    if policy != "all" and policy not in POLICIES:
        raise ReplayDataError(f"policy: must be 'all' or one of {', '.join(POLICIES)}")
    splits = load_source(source)
    if not splits["train"].queries or not splits["test"].queries:
        raise ReplayDataError(f"{source}: the train or test split is empty")
    models, notes = _common_models(splits)
    tr, te = tabulate(splits["train"], models), tabulate(splits["test"], models)
    b = models.index(best) if best else int(np.argmax(tr.score.mean(axis=0)))
    c = models.index(cheap) if cheap else choose_cheap(tr, best=b)
    box = {"min_quality": min_quality, "max_cost": max_cost}

    labels = (tr.score[:, c] < tr.score[:, b]).astype(np.float64)
    oof = TextClassifier.cross_val_proba(tr.prompts, labels, folds=folds, steps=classifier_steps)
    clf = TextClassifier.fit(tr.prompts, labels, steps=classifier_steps)
    p_test = clf.predict_proba_many(te.prompts)
    if save_router is not None:
        clf.save(save_router)

    def sweep(name: str, fn: Any, *, ts: list[float]) -> tuple[Point, list[Point]]:
        """Pick the threshold on train, return (test point at it, test frontier)."""
        on_train = [measure(name, fn(tr, th, "train"), threshold=th, table=tr, best=b) for th in ts]
        chosen = pick(on_train, **box)
        train_rows.append(chosen)
        frontier = [measure(name, fn(te, th, "test"), threshold=th, table=te, best=b) for th in ts]
        at = next(p for p in frontier if p.threshold == chosen.threshold)
        return at, pareto(frontier)

    probs = {"train": oof, "test": p_test}
    train_rows: list[Point] = []
    rows = [
        measure(
            "always-cheap",
            route(te, te.lengths < 0, cheap=c, best=b),
            threshold=None,
            table=te,
            best=b,
        ),
        measure(
            "always-best",
            route(te, te.lengths >= 0, cheap=c, best=b),
            threshold=None,
            table=te,
            best=b,
        ),
        measure("oracle", oracle(te, cheap=c, best=b), threshold=None, table=te, best=b),
    ]
    frontiers: dict[str, list[Point]] = {}
    length_ts = thresholds(tr.lengths)
    row, frontiers["length"] = sweep(
        "length", lambda t, th, s: route(t, t.lengths >= th, cheap=c, best=b), ts=length_ts
    )
    rows.append(row)
    row, frontiers["classifier"] = sweep(
        "classifier", lambda t, th, s: route(t, probs[s] >= th, cheap=c, best=b), ts=thresholds(oof)
    )
    rows.append(row)

    # Cascade variants: checks only, or checks plus an agreement verifier; chosen on train.
    cost_train = tr.cost.mean(axis=0)
    candidates: list[int | None] = [None]
    if verifiers:
        candidates += [
            v for v in range(len(models)) if v not in (b, c) and cost_train[v] < 0.2 * cost_train[b]
        ]
    best_variant: tuple[float, int | None, Point] | None = None
    for v in candidates:
        for th in thresholds(oof):
            pt = measure(
                "cascade",
                cascade(tr, oof >= th, ladder=[c, b], verifier=v),
                threshold=th,
                table=tr,
                best=b,
            )
            s = slack(pt, **box)
            if best_variant is None or s > best_variant[0]:
                best_variant = (s, v, pt)
    assert best_variant is not None
    _, v, chosen_train = best_variant
    train_rows.append(chosen_train)
    cascade_fn = lambda t, th, s: cascade(t, probs[s] >= th, ladder=[c, b], verifier=v)  # noqa: E731
    frontier = [
        measure("cascade", cascade_fn(te, th, "test"), threshold=th, table=te, best=b)
        for th in thresholds(oof)
    ]
    rows.append(next(p for p in frontier if p.threshold == chosen_train.threshold))
    frontiers["cascade"] = pareto(frontier)

    # The length rule at the cascade's train cost: the same-budget comparison.
    on_train = [
        measure(
            "length", route(tr, tr.lengths >= th, cheap=c, best=b), threshold=th, table=tr, best=b
        )
        for th in length_ts
    ]
    affordable = [p for p in on_train if p.cost <= chosen_train.cost] or on_train[-1:]
    th_len = max(affordable, key=lambda p: p.quality).threshold or 0.0
    rows.append(
        measure(
            "length@cascade-cost",
            route(te, te.lengths >= th_len, cheap=c, best=b),
            threshold=th_len,
            table=te,
            best=b,
        )
    )
    shown = [r for r in rows if policy == "all" or r.policy.split("@")[0] == policy]
    final = next(r for r in rows if r.policy == "cascade")
    acc_tr = tr.score.mean(axis=0)
    return ReplayReport(
        source=str(source),
        dataset=splits["test"].name.split("/")[0],
        n_train=len(splits["train"]),
        n_test=len(splits["test"]),
        best=models[b],
        cheap=models[c],
        models=[
            {
                "model": m,
                "train_accuracy": float(acc_tr[j]),
                "train_cost_per_query_usd": float(cost_train[j]),
            }
            for j, m in enumerate(models)
        ],
        chosen={
            "cheap_rule": f"cheapest with train accuracy >= {CHEAP_RULE} x best's",
            "cascade_ladder": [models[c], models[b]],
            "cascade_verifier": models[v] if v is not None else None,
            "cascade_threshold": chosen_train.threshold,
            "classifier_auc_test": _auc(p_test, te.score[:, c] < te.score[:, b]),
        },
        rows=shown,
        frontiers={k: f for k, f in frontiers.items() if policy in ("all", k)},
        train_rows=train_rows,
        notes=notes + splits["test"].notes,
        target=box,
        target_met=final.quality >= min_quality and final.cost <= max_cost,
        output_json=output_json,
    )


def _auc(p: Array, y: Mask) -> float | None:
    pos, n = int(y.sum()), len(y)
    if pos in (0, n):
        return None
    ranks = np.empty(n)
    ranks[np.argsort(p, kind="stable")] = np.arange(1, n + 1)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))
