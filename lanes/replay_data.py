"""Loaders of recorded per-model outcomes, for replaying routing and cascade policies offline.

Every format becomes the same `ReplayDataset`: queries, and per query and model an `Outcome`
(quality score, cost, answer text). Quality labels and costs are kept apart, so a source
without costs can be re-priced (see `ROUTELLM_PRICES`).

Formats:

* RouterBench subset (``routerbench-subset/``): ``<set>_<split>.csv.gz`` with per model
  ``<model>`` (0/1 correct), ``<model>|model_response`` and ``<model>|total_cost``. NaN
  correctness counts as wrong. Train/test splits as recorded.
* RouteLLM evals (``routellm-evals/``): GSM8K and MMLU, Mixtral-8x7B vs GPT-4-1106, bool
  correctness and no costs. Cost = (prompt chars / 4) x input price + output tokens x output
  price, where output tokens are the recorded answer's chars / 4 when there is one (GSM8K) and
  `FIXED_OUTPUT_TOKENS` otherwise (MMLU answers are one letter). Prompts RouteLLM flagged as
  contaminated are dropped. No split is recorded: a stable hash of the prompt puts
  `TEST_SHARE` of the queries in test.
* FrugalGPT summaries: aggregate (accuracy, cost) points only, not replayable per query;
  `load_frugalgpt_summary` returns them as reference anchors.
* Shadow log (JSONL, written by ``llm-lanes`` in shadow mode), one job per line::

      {"job_id": "...", "prompt": "...", "feature": "chat",
       "attempts": [{"tier": "top", "model": "gpt-x", "text": "...", "finish_reason": "stop",
                     "input_tokens": 812, "output_tokens": 95, "cost_usd": "0.0031",
                     "accepted": true, "correct": null}, ...]}

  The first attempt is the one that answered the user (the default tier); the others ran in
  its shadow. `accepted` is the checks' verdict at the time; `correct` is a label added later
  (human review, an evaluator) and may be null. Score: `correct` when set, else agreement of
  the normalised text with the first attempt's (which scores 1). Split as for RouteLLM.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lanes.errors import ReplayDataError

TEST_SHARE = 0.3
FIXED_OUTPUT_TOKENS = 5
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
GPT4 = "gpt-4-1106-preview"
ROUTELLM_PRICES = {MIXTRAL: (0.6, 0.6), GPT4: (10.0, 30.0)}
"""USD per million (input, output) tokens: Mixtral at a typical hosted price, GPT-4-1106 list."""
ROUTERBENCH_SETS = {"arc_challenge": "choice", "winograde": "choice", "mbpp": "python"}

csv.field_size_limit(1 << 30)


@dataclass(frozen=True, slots=True)
class Outcome:
    score: float
    """1 correct, 0 wrong (or a graded score in [0, 1])."""
    cost_usd: float
    text: str | None = None
    accepted: bool | None = None
    """The live checks' verdict, when the source recorded one (shadow logs)."""


@dataclass(frozen=True, slots=True)
class Query:
    qid: str
    prompt: str
    task: str
    """Eval set or feature tag."""
    answer_kind: str | None
    """Expected answer shape for the format check: choice | final_number | python | None."""
    outcomes: Mapping[str, Outcome]


@dataclass
class ReplayDataset:
    name: str
    models: list[str]
    queries: list[Query]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.queries)


@dataclass(frozen=True, slots=True)
class AggregatePoint:
    dataset: str
    method: str
    provider: str
    test_accuracy: float
    test_cost_usd: float
    budget: float | None


def hash_split(key: str, *, test_share: float = TEST_SHARE) -> str:
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
    return "test" if bucket < test_share else "train"


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.exists():
        raise ReplayDataError(f"{path}: not found")
    with _open_text(path) as fh:
        yield from csv.DictReader(fh)


def _unlist(value: str) -> str:
    """RouterBench stores prompts and answers as stringified Python lists."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    if isinstance(parsed, list):
        return "\n".join(str(p) for p in parsed)
    return str(parsed)


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


# -- RouterBench --------------------------------------------------------------------------


def load_routerbench(root: str | Path, split: str) -> ReplayDataset:
    root = Path(root)
    queries: list[Query] = []
    models: list[str] = []
    missing = 0
    for stem, kind in ROUTERBENCH_SETS.items():
        path = root / f"{stem}_{split}.csv.gz"
        for n, row in enumerate(_rows(path)):
            if not models:
                skip = {"", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}
                models = [c for c in row if c not in skip and "|" not in c]
            outcomes = {}
            for m in models:
                score = _float(row.get(m))
                if math.isnan(score):
                    missing += 1
                    score = 0.0
                cost = _float(row.get(f"{m}|total_cost"))
                if math.isnan(cost):
                    raise ReplayDataError(f"{path}: row {n + 1}: no cost for {m}")
                text = _unlist(row.get(f"{m}|model_response") or "")
                outcomes[m] = Outcome(score=score, cost_usd=cost, text=text)
            queries.append(
                Query(
                    qid=f"{row['eval_name']}:{row['sample_id']}:{n}",
                    prompt=_unlist(row["prompt"]),
                    task=row["eval_name"],
                    answer_kind=kind,
                    outcomes=outcomes,
                )
            )
    notes = [f"{missing} missing correctness cells counted as wrong"] if missing else []
    return ReplayDataset(f"routerbench/{split}", models, queries, notes)


# -- RouteLLM -----------------------------------------------------------------------------


def routellm_cost(model: str, prompt: str, answer: str | None) -> float:
    price_in, price_out = ROUTELLM_PRICES[model]
    out_tokens = len(answer) / 4 if answer else FIXED_OUTPUT_TOKENS
    return (len(prompt) / 4 * price_in + out_tokens * price_out) / 1e6


def _contaminated(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {json.loads(line)["eval_prompt"] for line in fh if line.strip()}


def _routellm_query(
    row: dict[str, str], *, qid: str, task: str, kind: str | None, with_text: bool
) -> Query:
    prompt = row["prompt"]
    outcomes = {}
    for m in (MIXTRAL, GPT4):
        text = row.get(f"{m}_response") if with_text else None
        score = 1.0 if row[m].strip().lower() == "true" else 0.0
        outcomes[m] = Outcome(score=score, cost_usd=routellm_cost(m, prompt, text), text=text)
    return Query(qid=qid, prompt=prompt, task=task, answer_kind=kind, outcomes=outcomes)


def _split_routellm(name: str, queries: list[Query], notes: list[str]) -> dict[str, ReplayDataset]:
    out = {}
    for split in ("train", "test"):
        chosen = [q for q in queries if hash_split(q.prompt) == split]
        out[split] = ReplayDataset(f"{name}/{split}", [MIXTRAL, GPT4], chosen, list(notes))
    return out


def _cost_note(kind: str) -> str:
    return (
        f"costs assumed: prompt chars/4 x input price + {kind} x output price; "
        "Mixtral $0.6/M in+out, GPT-4-1106 $10/M in, $30/M out"
    )


def load_routellm_gsm8k(root: str | Path) -> dict[str, ReplayDataset]:
    root = Path(root) / "gsm8k"
    bad = _contaminated(root / "contaminated_prompts.jsonl.gz")
    queries = [
        _routellm_query(r, qid=f"gsm8k:{i}", task="gsm8k", kind="final_number", with_text=True)
        for i, r in enumerate(_rows(root / "gsm8k_responses.csv.gz"))
        if r["prompt"] not in bad
    ]
    notes = [_cost_note("answer chars/4"), f"{len(bad)} contaminated prompts excluded"]
    return _split_routellm("gsm8k", queries, notes)


def load_routellm_mmlu(root: str | Path) -> dict[str, ReplayDataset]:
    root = Path(root) / "mmlu-responses"
    bad = _contaminated(root / "contaminated_prompts.jsonl.gz")
    queries = []
    files = sorted(root.glob("mmlu_*.csv.gz"))
    if not files:
        raise ReplayDataError(f"{root}: no mmlu_*.csv.gz files")
    for path in files:
        subject = path.name.removeprefix("mmlu_").removesuffix(".csv.gz")
        for i, r in enumerate(_rows(path)):
            if r["prompt"] not in bad:
                q = _routellm_query(
                    r, qid=f"mmlu:{subject}:{i}", task=subject, kind=None, with_text=False
                )
                queries.append(q)
    notes = [_cost_note(f"{FIXED_OUTPUT_TOKENS} tokens"), f"{len(bad)} contaminated excluded"]
    return _split_routellm("mmlu", queries, notes)


# -- FrugalGPT ----------------------------------------------------------------------------


def load_frugalgpt_summary(root: str | Path) -> list[AggregatePoint]:
    points = []
    for path in sorted(Path(root).glob("summary_*.csv")):
        dataset = path.stem.split("_")[1]
        for row in _rows(path):
            points.append(
                AggregatePoint(
                    dataset=dataset,
                    method=row.get("Method", ""),
                    provider=row.get("Provider", ""),
                    test_accuracy=_float(row.get("Test_acc")),
                    test_cost_usd=_float(row.get("Test_cost")),
                    budget=_float(row.get("Budget")) if row.get("Budget") else None,
                )
            )
    return points


# -- shadow log ---------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _shadow_query(obj: Any, where: str) -> Query:
    if not isinstance(obj, dict) or not isinstance(obj.get("attempts"), list):
        raise ReplayDataError(f"{where}: needs an object with an 'attempts' list")
    attempts = obj["attempts"]
    if not attempts:
        raise ReplayDataError(f"{where}: 'attempts' is empty")
    reference = _normalise(str(attempts[0].get("text") or ""))
    outcomes = {}
    for j, a in enumerate(attempts):
        if not isinstance(a, dict) or not a.get("model"):
            raise ReplayDataError(f"{where}: attempts[{j}] needs a 'model'")
        text = str(a.get("text") or "")
        correct = a.get("correct")
        if correct is not None:
            score = float(correct)
        else:
            score = 1.0 if j == 0 or _normalise(text) == reference else 0.0
        try:
            cost = float(a.get("cost_usd") or 0.0)
        except (TypeError, ValueError):
            raise ReplayDataError(f"{where}: attempts[{j}].cost_usd is not a number") from None
        outcomes[str(a["model"])] = Outcome(
            score=score, cost_usd=cost, text=text, accepted=a.get("accepted")
        )
    return Query(
        qid=str(obj.get("job_id") or where),
        prompt=str(obj.get("prompt") or ""),
        task=str(obj.get("feature") or "default"),
        answer_kind=None,
        outcomes=outcomes,
    )


def load_shadow_log(path: str | Path) -> dict[str, ReplayDataset]:
    path = Path(path)
    if not path.exists():
        raise ReplayDataError(f"{path}: not found")
    queries = []
    labelled = 0
    with _open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ReplayDataError(f"{path}:{n}: not JSON ({exc})") from None
            queries.append(_shadow_query(obj, f"{path}:{n}"))
            labelled += any(a.get("correct") is not None for a in obj["attempts"])
    models: list[str] = []
    for q in queries:
        models.extend(m for m in q.outcomes if m not in models)
    notes = [f"{labelled}/{len(queries)} jobs labelled; others scored by agreement"]
    out = {}
    for split in ("train", "test"):
        chosen = [q for q in queries if hash_split(q.qid) == split]
        out[split] = ReplayDataset(f"shadow/{split}", models, chosen, list(notes))
    return out


def load_source(source: str | Path) -> dict[str, ReplayDataset]:
    """{"train": ..., "test": ...} from a folder of a known format or a shadow-log file."""
    path = Path(source)
    if path.is_file():
        return load_shadow_log(path)
    if (path / "arc_challenge_train.csv.gz").exists():
        return {s: load_routerbench(path, s) for s in ("train", "test")}
    if (path / "gsm8k_responses.csv.gz").exists():
        return load_routellm_gsm8k(path.parent)
    if path.name == "mmlu-responses" and path.is_dir():
        return load_routellm_mmlu(path.parent)
    for sub in ("routerbench-subset", "routellm-evals", "gsm8k", "mmlu-responses"):
        if (path / sub).is_dir():
            raise ReplayDataError(f"{path}: pick one data set inside it, e.g. {path / sub}")
    raise ReplayDataError(f"{source}: not a RouterBench, RouteLLM or shadow-log source")
