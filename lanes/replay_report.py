"""Replay results as data (`Point`, `ReplayReport`) and their rendering, apart from the maths."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Point:
    policy: str
    threshold: float | None
    quality: float
    """Total score as a share of always-best's."""
    cost: float
    """Total cost as a share of always-best's."""
    accuracy: float
    cost_per_query_usd: float
    escalated: float | None = None
    """Share of queries that paid for more than the answering model."""


@dataclass
class ReplayReport:
    source: str
    dataset: str
    n_train: int
    n_test: int
    best: str
    cheap: str
    models: list[dict[str, Any]]
    chosen: dict[str, Any]
    rows: list[Point]
    frontiers: dict[str, list[Point]]
    train_rows: list[Point]
    notes: list[str]
    target: dict[str, float]
    target_met: bool
    output_json: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output_json")
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    raise TypeError(type(value).__name__)


def render(report: ReplayReport) -> str:
    """The report as JSON (`output_json`) or as a table for people."""
    if report.output_json:
        return report.to_json()
    from io import StringIO

    from rich.console import Console
    from rich.table import Table as RichTable

    out = StringIO()
    console = Console(file=out, width=110, force_terminal=False)
    title = (
        f"{report.dataset}: train {report.n_train} / test {report.n_test}; "
        f"cheap={report.cheap}, best={report.best}"
    )
    table = RichTable(title=title, title_justify="left")
    for col in (
        "policy",
        "threshold",
        "quality % best",
        "cost % best",
        "accuracy",
        "$ / query",
        "escalated",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in report.rows:
        table.add_row(
            r.policy,
            "" if r.threshold is None else f"{r.threshold:.4g}",
            f"{100 * r.quality:.1f}",
            f"{100 * r.cost:.1f}",
            f"{r.accuracy:.3f}",
            f"{r.cost_per_query_usd:.6f}",
            "" if not r.escalated else f"{100 * r.escalated:.1f}%",
        )
    console.print(table)
    ch = report.chosen
    console.print(
        f"cascade: {' -> '.join(ch['cascade_ladder'])}, verifier={ch['cascade_verifier']}, "
        f"classifier threshold={ch['cascade_threshold']:.4g} (chosen on train); "
        f"target quality >= {100 * report.target['min_quality']:.0f}% at cost <= "
        f"{100 * report.target['max_cost']:.0f}%: {'MET' if report.target_met else 'NOT met'}"
    )
    for name, front in report.frontiers.items():
        step = max(1, -(-len(front) // 12))
        shown = front[::step] + ([front[-1]] if (len(front) - 1) % step else [])
        pts = ", ".join(f"{100 * p.quality:.1f}%@{100 * p.cost:.1f}%" for p in shown)
        console.print(f"frontier {name} (quality@cost, test): {pts}")
    for note in report.notes:
        console.print(f"note: {note}")
    return out.getvalue()
