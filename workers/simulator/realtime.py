"""The realtime engine: routes OpenAI/Azure/Anthropic model calls and runs them.

It is both a `RouteHandler` (for the HTTP front) and an `Executor` (for the batch engine), so
a batch line gets exactly the answer, usage and cache behaviour the realtime endpoint would
give, only with the batch service tier and without waiting out the latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workers.simulator import realtime_anthropic, realtime_openai, streaming
from workers.simulator.cache import PrefixCache
from workers.simulator.clock import VirtualClock
from workers.simulator.config import SimConfig
from workers.simulator.errors import SimError, bad_request, new_request_id, request_id_header
from workers.simulator.faults import ScriptBook
from workers.simulator.generation import Call, Outcome, raise_scripted_error
from workers.simulator.prompts import Prompt, render_anthropic, render_chat, render_responses
from workers.simulator.protocol import Flavor, SimRequest, SimResponse

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
INPUT_TOKENS = "/v1/responses/input_tokens"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
MODELS = "/v1/models"

_RENDER: dict[str, Callable[[dict[str, Any]], Prompt]] = {
    CHAT: render_chat,
    RESPONSES: render_responses,
    INPUT_TOKENS: render_responses,
    MESSAGES: render_anthropic,
    COUNT_TOKENS: render_anthropic,
}
_GENERATING = frozenset({CHAT, RESPONSES, MESSAGES})


def canonical_endpoint(endpoint: str) -> str:
    """Batch files may name endpoints without `/v1` (Azure examples use `/chat/completions`)."""
    path = endpoint.split("?", 1)[0].rstrip("/")
    return path if path.startswith("/v1/") else "/v1" + path


class RealtimeEngine:
    def __init__(
        self,
        *,
        config: SimConfig,
        clock: VirtualClock,
        cache: PrefixCache | None = None,
        scripts: ScriptBook | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.clock = clock
        self.cache = cache or PrefixCache(clock)
        self.scripts = scripts or ScriptBook()
        self._sleep = sleep

    # -- RouteHandler -------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse | None:
        if request.method == "GET" and request.path == MODELS:
            return self._models(request)
        if request.method != "POST" or request.path not in _RENDER:
            return None
        try:
            body = request.json()
        except ValueError:
            rid = new_request_id()
            err = bad_request("We could not parse the JSON body of your request.")
            return SimResponse(
                400, err.body(request.flavor, rid), request_id_header(request.flavor, rid)
            )
        outcome = self.run(
            flavor=request.flavor,
            endpoint=request.path,
            body=body,
            batch=False,
            deployment=request.deployment,
        )
        if outcome.latency > 0:
            self._sleep(outcome.latency)
        headers = {**request_id_header(request.flavor, outcome.request_id), **outcome.headers}
        streamed = request.path in _GENERATING and isinstance(body, dict) and body.get("stream")
        if outcome.status == 200 and streamed:
            return SimResponse(
                200, self._stream(request.path, outcome.body, body), headers, "text/event-stream"
            )
        return SimResponse(outcome.status, outcome.body, headers)

    # -- Executor -----------------------------------------------------------------------
    def execute(
        self, *, flavor: Flavor, endpoint: str, body: dict[str, Any], batch: bool
    ) -> tuple[int, dict[str, Any]]:
        """Run one body as the realtime endpoint would (no latency wait); see `Executor`."""
        outcome = self.run(flavor=flavor, endpoint=endpoint, body=body, batch=batch)
        return outcome.status, outcome.body

    def run(
        self,
        *,
        flavor: Flavor,
        endpoint: str,
        body: Any,
        batch: bool,
        deployment: str | None = None,
    ) -> Outcome:
        rid = new_request_id()
        endpoint = canonical_endpoint(endpoint)
        model = ""
        call: Call | None = None
        try:
            if not isinstance(body, dict):
                raise bad_request("The request body must be a JSON object.")
            model = self._model(flavor, endpoint, body, deployment)
            if batch and body.get("stream"):
                raise bad_request("'stream' is not supported in batch requests.", param="stream")
            render = _RENDER.get(endpoint)
            if render is None:
                raise SimError(404, f"Invalid URL (POST {endpoint})", code="unknown_url")
            call = Call(
                flavor=flavor,
                endpoint=endpoint,
                body=body,
                model=model,
                batch=batch,
                request_id=rid,
                now=self.clock.now(),
            )
            call.prompt = render(body)
            if endpoint in _GENERATING:
                call.rule = self.scripts.match(model, call.prompt.text)
                if call.rule is not None:
                    raise_scripted_error(call.rule)
            outcome = self._dispatch(call)
            outcome.latency = self.config.latency_for(model) + self.config.token_latency(
                outcome.output_tokens
            )
        except SimError as exc:
            outcome = Outcome(exc.status, exc.body(flavor, rid), rid, headers=exc.headers)
        rule = call.rule if call else None
        if rule is not None and rule.latency_ms:
            outcome.latency += rule.latency_ms * self.config.latency_scale / 1000.0
        return outcome

    def reset(self) -> None:
        self.cache.clear()
        self.scripts.clear()

    # -- internals ----------------------------------------------------------------------
    def _model(
        self, flavor: Flavor, endpoint: str, body: dict[str, Any], deployment: str | None
    ) -> str:
        model = body.get("model") or deployment
        if not isinstance(model, str) or not model:
            if flavor == "anthropic":
                raise bad_request("model: Field required")
            raise bad_request("You must provide a model parameter.", param="model")
        return model

    def _dispatch(self, call: Call) -> Outcome:
        config, cache = self.config, self.cache
        if call.endpoint == CHAT:
            return realtime_openai.chat(call, config, cache)
        if call.endpoint == RESPONSES:
            return realtime_openai.responses(call, config, cache)
        if call.endpoint == INPUT_TOKENS:
            return realtime_openai.input_tokens(call)
        if call.endpoint == MESSAGES:
            return realtime_anthropic.messages(call, config, cache)
        return realtime_anthropic.count_tokens(call)

    def _stream(self, path: str, result: dict[str, Any], body: dict[str, Any]) -> bytes:
        if path == CHAT:
            options = body.get("stream_options") or {}
            return streaming.chat_stream(result, include_usage=bool(options.get("include_usage")))
        if path == RESPONSES:
            return streaming.responses_stream(result)
        if path == MESSAGES:
            return streaming.anthropic_stream(result)
        return b""

    def _models(self, request: SimRequest) -> SimResponse:
        rid = new_request_id()
        if "anthropic-version" in request.headers:
            return SimResponse(
                200, realtime_anthropic.models(self.config), request_id_header("anthropic", rid)
            )
        return SimResponse(
            200,
            realtime_openai.models(self.config, self.clock.now()),
            request_id_header(request.flavor, rid),
        )
