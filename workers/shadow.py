"""Shadow mode's log: both tiers' answers per job, kept in SQL and exported for the replay."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from storage.jobs import ClaimedJob
from storage.models import ShadowSample

if TYPE_CHECKING:
    from workers.cascade import TierCall


def store_shadow(engine: Any, *, job: ClaimedJob, calls: list[TierCall]) -> None:
    attempts = [
        {
            "tier": c.tier.name,
            "model": c.request.model,
            "text": c.result.text if c.result else "",
            "finish_reason": c.result.finish_reason if c.result else "error",
            "input_tokens": c.result.usage.input_tokens if c.result else 0,
            "output_tokens": c.result.usage.output_tokens if c.result else 0,
            "cost_usd": str(c.cost),
            "accepted": c.reason is None,
            "correct": None,
        }
        for c in calls
    ]
    with Session(engine) as session:
        session.add(
            ShadowSample(
                job_id=job.id,
                feature=job.task.feature,
                prompt=job.task.prompt_text()[:20_000],
                attempts=attempts,
            )
        )
        session.commit()


def shadow_export_lines(engine: Any) -> list[str]:
    """Shadow samples as replay JSONL lines (`llm-lanes replay` reads this format)."""
    with Session(engine) as session:
        rows = session.exec(select(ShadowSample).order_by(ShadowSample.id))  # type: ignore[arg-type]
        return [
            json.dumps(
                {
                    "job_id": r.job_id,
                    "prompt": r.prompt,
                    "feature": r.feature,
                    "attempts": r.attempts,
                }
            )
            for r in rows
        ]
