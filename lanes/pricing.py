"""What a call costs, from per-model price rows.

Prices are kept per model (input, output, cache read, short and long cache writes, batch
factor) rather than as global ratios, because the ratios differ between models (Claude Opus
5.5 reads cache at 0.05x, GPT-5.6 writes at 1.25x, older OpenAI models write for free).

Resolution order: an operator's extra override file, the override file shipped in
`lanes/data/prices.json`, then `genai-prices`; otherwise `UnknownModelError`, never a guess.
Everything stays `Decimal`; round only when presenting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from lanes.errors import PriceDataError, UnknownModelError
from lanes.usage import Usage

MTOK = Decimal(1_000_000)
DEFAULT_BATCH_FACTOR = Decimal("0.5")
"""OpenAI Batch, Azure global batch and Anthropic Message Batches all bill 50% (spec 6.1)."""
ANY_PROVIDER = "*"
_PRICE_KEYS = ("input", "output", "cache_read", "cache_write_short", "cache_write_long")
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens for one model; `long_context` applies above `long_context_above`."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_short: Decimal
    """Anthropic 5m / OpenAI 30m writes."""
    cache_write_long: Decimal
    """Anthropic 1h / OpenAI 12h writes."""
    batch_factor: Decimal = DEFAULT_BATCH_FACTOR
    source: str = ""
    version: str = ""
    """Recorded on every ledger row, e.g. `override:2026-11-28` or `genai-prices:0.2.3`."""
    long_context_above: int | None = None
    long_context: ModelPrice | None = None

    def for_input_tokens(self, input_tokens: int) -> ModelPrice:
        """The row that applies to a request of this many input tokens (whole request tier)."""
        price = self
        while (
            price.long_context is not None
            and price.long_context_above is not None
            and input_tokens > price.long_context_above
        ):
            price = price.long_context
        return price

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, version: str, where: str = "price entry"
    ) -> ModelPrice:
        """Build from an override-file entry; missing cache prices fall back to the input price.

        Falling back to input is the no-discount reading: old models never report cached
        tokens, and OpenAI models before GPT-5.6 write to the cache at the input price.
        """
        try:
            inp = _decimal(data["input"])
            out = _decimal(data["output"])
            read = _decimal(data.get("cache_read", inp))
            short = _decimal(data.get("cache_write_short", inp))
            long = _decimal(data.get("cache_write_long", short))
            factor = _decimal(data.get("batch_factor", DEFAULT_BATCH_FACTOR))
        except KeyError as exc:
            raise PriceDataError(f"{where}: missing {exc.args[0]!r}") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise PriceDataError(f"{where}: bad number ({exc})") from None
        values = (inp, out, read, short, long, factor)
        if any(not v.is_finite() or v < 0 for v in values):
            raise PriceDataError(f"{where}: prices must be finite and >= 0")
        tier = data.get("long_context")
        above = None
        long_price = None
        if tier is not None:
            if not isinstance(tier, Mapping) or not isinstance(tier.get("above"), int):
                raise PriceDataError(f"{where}: long_context needs an integer 'above'")
            above = tier["above"]
            long_price = cls.from_mapping(
                {"batch_factor": factor, **tier}, version=version, where=f"{where}.long_context"
            )
        return cls(
            input=inp,
            output=out,
            cache_read=read,
            cache_write_short=short,
            cache_write_long=long,
            batch_factor=factor,
            source=str(data.get("source", "")),
            version=version,
            long_context_above=above,
            long_context=long_price,
        )


@dataclass(frozen=True, slots=True)
class Cost:
    """USD of one call, split so reports can show where the money went."""

    uncached_input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    price_version: str
    batch: bool = False
    usd: Decimal = field(init=False)
    """Total; a stored field (not a property) so it serializes and satisfies attribute Protocols."""

    def __post_init__(self) -> None:
        total = self.uncached_input + self.cache_read + self.cache_write + self.output
        object.__setattr__(self, "usd", total)

    @property
    def input(self) -> Decimal:
        return self.uncached_input + self.cache_read + self.cache_write


def compute_cost(price: ModelPrice, usage: Usage, *, batch: bool = False) -> Cost:
    """Spec 6.1 with `Usage`'s subset semantics: each input token billed at exactly one rate.

    cost = U*input + C*cache_read + W5*write_short + W1h*write_long + O*output, where
    U = input - cached - written; times `batch_factor` on every term for batch jobs
    (Anthropic and OpenAI both stack cache discounts with the batch discount).
    """
    row = price.for_input_tokens(usage.input_tokens)
    factor = row.batch_factor if batch else Decimal(1)

    def usd(tokens: int, per_mtok: Decimal) -> Decimal:
        return Decimal(tokens) * per_mtok * factor / MTOK

    return Cost(
        uncached_input=usd(usage.uncached_input_tokens, row.input),
        cache_read=usd(usage.cached_input_tokens, row.cache_read),
        cache_write=usd(usage.cache_write_short_tokens, row.cache_write_short)
        + usd(usage.cache_write_long_tokens, row.cache_write_long),
        output=usd(usage.output_tokens, row.output),
        price_version=row.version,
        batch=batch,
    )


def without_cache(usage: Usage) -> Usage:
    """The same call with every input token uncached (the no-caching counterfactual)."""
    return Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)


def normalize_provider(provider: str) -> str:
    return provider.strip().lower()


def model_candidates(model: str) -> Iterator[str]:
    """Names to try for a model ref: as given, without `org/`, without a date suffix.

    `mistralai/mixtral-8x7b-chat` -> `mixtral-8x7b-chat`; `gpt-5.4-2026-03-01` -> `gpt-5.4`;
    `claude-haiku-4-5-20251001` -> `claude-haiku-4-5`. No generic prefix matching: that would
    price `gpt-5.4-nano` as `gpt-5.4`.
    """
    seen: set[str] = set()
    name = model.strip().lower()
    for candidate in (name, name.rsplit("/", 1)[-1]):
        for each in (candidate, _DATE_SUFFIX.sub("", candidate)):
            if each and each not in seen:
                seen.add(each)
                yield each


class PriceTable:
    """Resolves (provider, model) to a `ModelPrice` and costs usage with it.

    `extra_override_path` (e.g. from a setting) adds custom or self-hosted models and
    corrects shipped prices: it is consulted first. Provider `azure` uses `openai` prices
    unless an `azure` section overrides them.
    """

    def __init__(
        self,
        *,
        extra_override_path: str | Path | None = None,
        builtin_override_path: str | Path | None = None,
        use_genai_prices: bool = True,
    ) -> None:
        self._layers: list[_OverrideLayer] = []
        if extra_override_path is not None:
            self._layers.append(_OverrideLayer.load(Path(extra_override_path), label="custom"))
        if builtin_override_path is not None:
            self._layers.append(_OverrideLayer.load(Path(builtin_override_path), label="override"))
        else:
            text = resources.files("lanes").joinpath("data/prices.json").read_text("utf-8")
            self._layers.append(_OverrideLayer.parse(text, label="override", where="prices.json"))
        self._use_genai = use_genai_prices
        self._cache: dict[tuple[str, str], ModelPrice] = {}

    def price(self, *, provider: str, model: str) -> ModelPrice:
        key = (normalize_provider(provider), model)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._resolve(*key)
        return found

    def cost(self, *, provider: str, model: str, usage: Usage, batch: bool = False) -> Cost:
        return compute_cost(self.price(provider=provider, model=model), usage, batch=batch)

    def cost_without_cache(
        self, *, provider: str, model: str, usage: Usage, batch: bool = False
    ) -> Cost:
        """What the call would have cost with caching off: all input at the full price."""
        return self.cost(provider=provider, model=model, usage=without_cache(usage), batch=batch)

    def cost_realtime_equivalent(self, *, provider: str, model: str, usage: Usage) -> Cost:
        """What the call would have cost outside batch (same tokens, no batch factor)."""
        return self.cost(provider=provider, model=model, usage=usage, batch=False)

    def _resolve(self, provider: str, model: str) -> ModelPrice:
        sections = [provider, "openai"] if provider == "azure" else [provider]
        sections.append(ANY_PROVIDER)
        for layer in self._layers:
            for section in sections:
                for name in model_candidates(model):
                    hit = layer.get(section, name)
                    if hit is not None:
                        return hit
        if self._use_genai:
            hit = _from_genai_prices(provider, model)
            if hit is not None:
                return hit
        searched = [layer.label for layer in self._layers]
        if self._use_genai:
            searched.append(_genai_version())
        raise UnknownModelError(provider, model, searched=searched)


@dataclass(frozen=True, slots=True)
class _OverrideLayer:
    label: str
    prices: Mapping[tuple[str, str], ModelPrice]

    def get(self, provider: str, model: str) -> ModelPrice | None:
        return self.prices.get((provider, model))

    @classmethod
    def load(cls, path: Path, *, label: str) -> _OverrideLayer:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise PriceDataError(f"{path}: cannot read price file ({exc})") from None
        return cls.parse(text, label=label, where=str(path))

    @classmethod
    def parse(cls, text: str, *, label: str, where: str) -> _OverrideLayer:
        """Format: {"version": "...", "providers": {provider: {model: entry}}}."""
        try:
            data = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise PriceDataError(f"{where}: not JSON ({exc})") from None
        providers = data.get("providers") if isinstance(data, dict) else None
        if not isinstance(providers, dict):
            raise PriceDataError(f"{where}: needs a 'providers' object")
        version = f"{label}:{data.get('version') or Path(where).stem}"
        prices: dict[tuple[str, str], ModelPrice] = {}
        for provider, models in providers.items():
            if not isinstance(models, dict):
                raise PriceDataError(f"{where}: providers.{provider} must be an object")
            for model, entry in models.items():
                spot = f"{where}: {provider}/{model}"
                if not isinstance(entry, dict):
                    raise PriceDataError(f"{spot}: must be an object")
                price = ModelPrice.from_mapping(entry, version=version, where=spot)
                for name in (model, *entry.get("aliases", ())):
                    prices[(normalize_provider(provider), str(name).lower())] = price
        return cls(label=version, prices=prices)


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected a number or numeric string, got {value!r}")
    return Decimal(value)


def _genai_version() -> str:
    import genai_prices

    return f"genai-prices:{genai_prices.__version__}"


def _from_genai_prices(provider: str, model: str) -> ModelPrice | None:
    """Convert genai-prices' row (possibly tiered by prompt size) to a `ModelPrice`."""
    from genai_prices import data_snapshot

    provider_id = {"azure": "openai", "openai_compatible": None}.get(provider, provider)
    snapshot = data_snapshot.get_snapshot()
    for name in model_candidates(model):
        try:
            _, info = snapshot.find_provider_model(name, None, provider_id, None)
        except LookupError:
            continue
        row = info.get_prices(datetime.now(UTC))
        if getattr(row, "input_mtok", None) is None or getattr(row, "output_mtok", None) is None:
            return None
        return _tiered_to_price(row, version=_genai_version(), source=f"genai-prices {info.id}")
    return None


def _tiered_to_price(row: Any, *, version: str, source: str) -> ModelPrice:
    keys = {
        "input": "input_mtok",
        "output": "output_mtok",
        "cache_read": "cache_read_mtok",
        "cache_write_short": "cache_write_mtok",
        "cache_write_long": "cache_write_1h_mtok",
    }
    raw: dict[str, Any] = {ours: getattr(row, theirs, None) for ours, theirs in keys.items()}
    tiered = [v for v in raw.values() if v is not None and hasattr(v, "tiers")]
    thresholds = sorted({t.start for v in tiered for t in v.tiers}, reverse=True)

    def at(value: Any, tokens: int) -> Decimal | None:
        if value is None or not hasattr(value, "tiers"):
            return value  # type: ignore[no-any-return]
        applicable: Decimal = value.base
        for tier in value.tiers:
            if tokens > tier.start:
                applicable = tier.price
        return applicable

    def row_at(tokens: int) -> dict[str, Any]:
        entry = {k: v for k, v in ((k, at(raw[k], tokens)) for k in _PRICE_KEYS) if v is not None}
        return {**entry, "source": source}

    price: ModelPrice | None = None
    for i, start in enumerate(thresholds):  # build the highest tier first, then wrap it
        above = ModelPrice.from_mapping(row_at(start + 1), version=version, where=source)
        if price is not None:
            above = replace(above, long_context_above=thresholds[i - 1], long_context=price)
        price = above
    base = ModelPrice.from_mapping(row_at(0), version=version, where=source)
    if price is not None:
        base = replace(base, long_context_above=thresholds[-1], long_context=price)
    return base
