"""The tiered cascade of the realtime lane: cheap model first, escalate one rung at a time.

The router picks the starting tier; each answer goes through the acceptance checks (and the
moderation hook, on every tier alike); a failed check escalates to the next tier and leaves
an `Escalation` row with the reason and the cost of the discarded attempt. Every attempt is
a ledger row. Rollout sends a stable share of jobs through the cascade and the rest straight
to the default tier; shadow mode answers with the default tier and runs the cheap tier beside
it, keeping both for offline replay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from lanes.checks import Attempt, CheckReason, default_checks, evaluate, extract_answer
from lanes.routing import RoutingInput, Tier
from lanes.task import LLMTask
from lanes.usage import Usage
from storage.jobs import ClaimedJob
from storage.ledger import CallFacts
from workers.cascade_config import CascadeConfig, in_rollout
from workers.providers.base import ProviderCallError, ProviderRequest, ProviderResult
from workers.shadow import store_shadow

log = logging.getLogger(__name__)


@dataclass
class TierCall:
    tier: Tier
    request: ProviderRequest
    result: ProviderResult | None
    error: ProviderCallError | None
    cost: Decimal = Decimal(0)
    reason: str | None = None
    detail: str | None = None


@dataclass
class CascadeOutcome:
    answer: TierCall | None
    calls: list[TierCall]
    escalations: int
    failure: str | None = None


class CascadeRunner:
    def __init__(self, rt: Any, config: CascadeConfig) -> None:
        self.rt = rt
        self.config = config

    # -- entry point -----------------------------------------------------------------------

    def run(self, job: ClaimedJob, *, lane: str) -> CascadeOutcome:
        task = job.task
        cfg = self.config
        decision = cfg.router.route(RoutingInput.from_task(task))
        if cfg.shadow:
            return self._shadow(job, lane=lane, cheap=decision.tier)
        if not in_rollout(job.id, cfg.rollout_percent):
            call = self._call(job, cfg.default_tier, lane=lane)
            self._judge(task, call, final=True)
            return self._single(job, call, lane=lane)
        return self._cascade(job, start=decision.tier, lane=lane)

    # -- modes -----------------------------------------------------------------------------

    def _cascade(self, job: ClaimedJob, *, start: Tier, lane: str) -> CascadeOutcome:
        calls: list[TierCall] = []
        tier: Tier | None = start
        escalations = 0
        while tier is not None:
            call = self._call(job, tier, lane=lane)
            calls.append(call)
            above = self.config.ladder.next_above(tier)
            self._judge(job.task, call, final=above is None)
            if call.reason is None:
                self._record(job, call, lane=lane, outcome="accepted")
                return CascadeOutcome(answer=call, calls=calls, escalations=escalations)
            if above is None:
                # Top tier and still failing a check: an answer beats none, unless it is an
                # error or blocked by moderation (those fail the job with the reason).
                fatal = call.result is None or call.reason == CheckReason.MODERATION
                self._record(job, call, lane=lane, outcome="failed" if fatal else "accepted")
                if fatal:
                    return CascadeOutcome(
                        answer=None,
                        calls=calls,
                        escalations=escalations,
                        failure=f"{call.reason}: {call.detail or ''}".strip(),
                    )
                return CascadeOutcome(answer=call, calls=calls, escalations=escalations)
            row = self._record(job, call, lane=lane, outcome="escalated")
            self.rt.ledger.record_escalation(
                job_id=job.id,
                feature=job.task.feature,
                from_tier=tier.name,
                to_tier=above.name,
                reason=str(call.reason),
                detail=call.detail,
                discarded_cost_usd=row.cost_usd,
            )
            escalations += 1
            tier = above
        raise AssertionError("unreachable")

    def _shadow(self, job: ClaimedJob, *, lane: str, cheap: Tier) -> CascadeOutcome:
        cfg = self.config
        answer = self._call(job, cfg.default_tier, lane=lane)
        self._judge(job.task, answer, final=True)
        outcome = self._single(job, answer, lane=lane)
        calls = [answer]
        if cheap.name != cfg.default_tier.name:
            shadow = self._call(job, cheap, lane="shadow")
            self._judge(job.task, shadow, final=False)
            self._record(job, shadow, lane="shadow", outcome="shadow")
            calls.append(shadow)
        store_shadow(self.rt.engine, job=job, calls=calls)
        outcome.calls = calls
        return outcome

    def _single(self, job: ClaimedJob, call: TierCall, *, lane: str) -> CascadeOutcome:
        blocked = call.reason == CheckReason.MODERATION
        fatal = call.result is None or blocked
        self._record(job, call, lane=lane, outcome="failed" if fatal else "accepted")
        if fatal:
            return CascadeOutcome(
                answer=None,
                calls=[call],
                escalations=0,
                failure=f"{call.reason}: {call.detail or ''}".strip(),
            )
        return CascadeOutcome(answer=call, calls=[call], escalations=0)

    # -- one attempt -------------------------------------------------------------------------

    def _call(self, job: ClaimedJob, tier: Tier, *, lane: str) -> TierCall:
        task = job.task
        cap = tier.max_output_tokens_for(task.feature)
        wants_logprobs = (
            self.config.min_mean_logprob is not None
            and tier.provider != "anthropic"
            and (task.api or "chat") == "chat"
        )
        request = self.rt.requests.build(
            task,
            provider=tier.provider,
            model=tier.model_for(task.feature),
            max_output_tokens=min(task.max_output_tokens, cap) if cap else None,
            logprobs=wants_logprobs,
        )
        request = replace(request, client_request_id=job.id)
        try:
            result = self.rt.providers.get(tier.provider, base_url=tier.base_url).call(request)
        except ProviderCallError as exc:
            return TierCall(tier=tier, request=request, result=None, error=exc)
        return TierCall(tier=tier, request=request, result=result, error=None)

    def _judge(self, task: LLMTask, call: TierCall, *, final: bool) -> None:
        """Set `call.reason` to why the answer cannot be accepted (None: accept)."""
        cfg = self.config
        attempt = to_attempt(task, call)
        hooks = []
        if cfg.acceptance_hook is not None:
            hook = cfg.acceptance_hook
            hooks.append(lambda a: hook(task, a))
        result = evaluate(
            attempt,
            default_checks(
                min_mean_logprob=cfg.min_mean_logprob,
                user_hooks=hooks,
                answer_format=cfg.answer_formats.get(task.feature),
            ),
        )
        if result.ok and cfg.moderation_hook is not None and call.result is not None:
            verdict = cfg.moderation_hook(call.result.text)
            if verdict:
                call.reason, call.detail = CheckReason.MODERATION, str(verdict)
                return
        if not result.ok:
            call.reason, call.detail = result.reason, result.detail
            return
        if cfg.verifier is not None and not final and call.result is not None:
            call.reason, call.detail = self._verify(task, call)

    def _verify(self, task: LLMTask, call: TierCall) -> tuple[str | None, str | None]:
        assert self.config.verifier is not None and call.result is not None
        verifier = self.config.verifier
        if self.config.verifier_mode == "agree":
            probe = task
        else:
            question = task.prompt_text()[-4000:]
            probe = LLMTask(
                messages=[
                    {
                        "role": "user",
                        "content": (
                            f"Question:\n{question}\n\nProposed answer:\n{call.result.text}\n\n"
                            "Is the proposed answer correct and complete? Reply YES or NO."
                        ),
                    }
                ],
                feature=task.feature,
                tenant=task.tenant,
                max_output_tokens=5,
            )
        request = self.rt.requests.build(
            probe, provider=verifier.provider, model=verifier.model_for(task.feature)
        )
        try:
            verdict = self.rt.providers.get(verifier.provider, base_url=verifier.base_url).call(
                request
            )
        except ProviderCallError as exc:
            return None, f"verifier unavailable: {exc.kind}"  # do not escalate on its failure
        self.rt.ledger.record(
            CallFacts(
                provider=verifier.provider,
                model=request.model,
                lane="verifier",
                usage=verdict.usage,
                api=request.api,
                tier=verifier.name,
                feature=task.feature,
                tenant=task.tenant,
                latency_ms=verdict.latency_ms,
                outcome="verifier",
                extra_spend=True,
            )
        )
        if self.config.verifier_mode == "agree":
            kind = self.config.answer_formats.get(task.feature)
            if same_answer(call.result.text, verdict.text, kind=kind):
                return None, None
            return CheckReason.VERIFIER, f"{verifier.name} gave a different answer"
        if verdict.text.strip().upper().startswith("YES"):
            return None, None
        return CheckReason.VERIFIER, verdict.text.strip()[:200]

    def _record(self, job: ClaimedJob, call: TierCall, *, lane: str, outcome: str) -> Any:
        task = job.task
        r = call.result
        default = self.config.default_tier
        row = self.rt.ledger.record(
            CallFacts(
                job_id=job.id,
                provider=call.tier.provider,
                model=call.request.model,
                api=call.request.api,
                lane=lane,
                tier=call.tier.name,
                feature=task.feature,
                tenant=task.tenant,
                attempt=job.attempts,
                usage=r.usage if r else Usage(),
                status="ok" if r else "error",
                error_kind=call.error.kind if call.error else None,
                latency_ms=r.latency_ms if r else 0.0,
                request_id=r.request_id if r else None,
                cache_segments=call.request.cache_segments,
                outcome=outcome,
                # Savings are measured against serving the job on the default tier: the
                # answer is priced there, and attempts the cascade added are extra spend.
                baseline=(default.provider, default.model_for(task.feature)),
                extra_spend=outcome not in ("accepted", "failed"),
            )
        )
        call.cost = row.cost_usd
        return row


def same_answer(a: str, b: str, *, kind: str | None) -> bool:
    """Agreement of two answers: on the extracted answer when the feature declares a format
    (choice letter, final number, code), else on whitespace- and case-normalised text."""
    if kind is not None:
        left, right = extract_answer(kind, a), extract_answer(kind, b)
        return left is not None and left == right

    def norm(text: str) -> str:
        return " ".join(text.casefold().split()).strip(" .!")

    return bool(norm(a)) and norm(a) == norm(b)


def to_attempt(task: LLMTask, call: TierCall) -> Attempt:
    r = call.result
    if r is None:
        return Attempt(
            text="",
            finish_reason="error",
            error_kind=call.error.kind if call.error else "error",
            logprobs=None,
            json_schema=task.json_schema,
        )
    finish = (
        r.finish_reason
        if r.finish_reason in ("stop", "length", "refusal", "content_filter")
        else "stop"
    )
    return Attempt(
        text=r.text,
        finish_reason=finish,
        error_kind=None,
        logprobs=r.logprobs,
        json_schema=task.json_schema,
        latency_ms=r.latency_ms,
    )
