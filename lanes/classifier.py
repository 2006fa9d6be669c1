"""A small text classifier for the router: TF-IDF features and logistic regression, in numpy.

It predicts "the cheap tier will fail on this prompt". Small and dependency-free on purpose:
it trains in seconds on a few thousand recorded outcomes, scores a prompt in microseconds on
the hot path, and saves to one JSON file that `LLM_LANES_ROUTER_CLASSIFIER_PATH` points at.
Matrices are kept sparse (CSR arrays) so large replay sets fit in memory.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_WORD = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")
FORMAT_VERSION = 1


def tokens(text: str, *, max_chars: int = 8000) -> list[str]:
    """Lower-cased words and single symbols, plus word bigrams (symbols carry code/math cues)."""
    words = _WORD.findall(text[:max_chars].lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


@dataclass
class _Csr:
    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    data: NDArray[np.float64]
    n_cols: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def __post_init__(self) -> None:
        self.row_ids = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def take(self, rows: NDArray[np.int64]) -> _Csr:
        lengths = np.diff(self.indptr)[rows]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        pos = np.repeat(self.indptr[rows] - indptr[:-1], lengths) + np.arange(indptr[-1])
        return _Csr(indptr, self.indices[pos], self.data[pos], self.n_cols)

    def dot(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.bincount(self.row_ids, weights=self.data * w[self.indices], minlength=self.n_rows)
        return out.astype(np.float64)

    def tdot(self, g: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.bincount(self.indices, weights=self.data * g[self.row_ids], minlength=self.n_cols)
        return out.astype(np.float64)


class TextClassifier:
    """Binary classifier over prompt text; `predict_proba` is P(label = 1)."""

    def __init__(
        self,
        *,
        vocabulary: dict[str, int],
        idf: NDArray[np.float64],
        weights: NDArray[np.float64],
        bias: float,
    ) -> None:
        self.vocabulary = vocabulary
        self.idf = idf
        self.weights = weights
        self.bias = bias
        self._wi = weights * idf  # tf-idf weight folded into the coefficients for scoring

    # -- training ---------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[float] | NDArray[np.float64],
        *,
        min_df: int = 2,
        max_features: int = 30_000,
        l2: float = 1e-3,
        steps: int = 300,
        learning_rate: float = 0.1,
    ) -> TextClassifier:
        """Adam on the L2-regularised log-loss, full batch: deterministic and fast enough."""
        docs = [Counter(tokens(t)) for t in texts]
        vocabulary, idf = _vocabulary(docs, min_df=min_df, max_features=max_features)
        x = _matrix(docs, vocabulary, idf)
        w, b = _train(x, np.asarray(labels, dtype=np.float64), l2=l2, steps=steps, lr=learning_rate)
        return cls(vocabulary=vocabulary, idf=idf, weights=w, bias=b)

    @staticmethod
    def cross_val_proba(
        texts: Sequence[str],
        labels: Sequence[float] | NDArray[np.float64],
        *,
        folds: int = 5,
        min_df: int = 2,
        l2: float = 1e-3,
        steps: int = 300,
    ) -> NDArray[np.float64]:
        """Out-of-fold P(label = 1) for every text, to pick a threshold without touching test.

        The vocabulary and IDF come from all the texts (they use no labels); only the weights
        are fitted per fold.
        """
        y = np.asarray(labels, dtype=np.float64)
        docs = [Counter(tokens(t)) for t in texts]
        vocabulary, idf = _vocabulary(docs, min_df=min_df, max_features=30_000)
        x = _matrix(docs, vocabulary, idf)
        fold_of = np.arange(len(docs)) % max(folds, 2)
        out = np.zeros(len(docs))
        for k in range(max(folds, 2)):
            train = np.flatnonzero(fold_of != k)
            held = np.flatnonzero(fold_of == k)
            w, b = _train(x.take(train), y[train], l2=l2, steps=steps, lr=0.1)
            out[held] = _sigmoid(x.take(held).dot(w) + b)
        return out

    # -- scoring ----------------------------------------------------------------------------

    def predict_proba(self, text: str) -> float:
        """One prompt, on the router's hot path: no matrices, just a sparse dot product."""
        counts: dict[int, int] = {}
        vocab = self.vocabulary
        for tok in tokens(text):
            i = vocab.get(tok)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return float(_sigmoid(np.array([self.bias]))[0])
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        norm = float(np.sqrt(np.sum((tf * self.idf[idx]) ** 2)))
        z = float(tf @ self._wi[idx]) / norm + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def predict_proba_many(self, texts: Sequence[str]) -> NDArray[np.float64]:
        x = _matrix([Counter(tokens(t)) for t in texts], self.vocabulary, self.idf)
        return _sigmoid(x.dot(self.weights) + self.bias)

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        vocab = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        payload = {
            "format": "llm-lanes-text-classifier",
            "version": FORMAT_VERSION,
            "vocabulary": vocab,
            "idf": [round(float(v), 6) for v in self.idf],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": self.bias,
        }
        Path(path).write_text(json.dumps(payload))

    @classmethod
    def load(cls, path: str | Path) -> TextClassifier:
        data = json.loads(Path(path).read_text())
        if data.get("format") != "llm-lanes-text-classifier" or data.get("version") != 1:
            raise ValueError(f"{path}: not an llm-lanes router classifier file")
        return cls(
            vocabulary={t: i for i, t in enumerate(data["vocabulary"])},
            idf=np.asarray(data["idf"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
        )


def _vocabulary(
    docs: Sequence[Counter[str]], *, min_df: int, max_features: int
) -> tuple[dict[str, int], NDArray[np.float64]]:
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    kept = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))
    vocabulary = {t: i for i, t in enumerate(kept[:max_features])}
    n = max(len(docs), 1)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in vocabulary], dtype=np.float64)
    return vocabulary, idf


def _train(
    x: _Csr, y: NDArray[np.float64], *, l2: float, steps: int, lr: float
) -> tuple[NDArray[np.float64], float]:
    if x.n_rows != len(y):
        raise ValueError("texts and labels differ in length")
    n = max(len(y), 1)
    w = np.zeros(x.n_cols)
    mean = float(y.mean()) if len(y) else 0.5
    b = math.log((mean + 1e-6) / (1 - mean + 1e-6))
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        err = (_sigmoid(x.dot(w) + b) - y) / n
        g_w = x.tdot(err) + l2 * w
        g_b = float(err.sum())
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        c1, c2 = 1 - beta1**step, 1 - beta2**step
        w -= lr * (m_w / c1) / (np.sqrt(v_w / c2) + eps)
        b -= lr * (m_b / c1) / (math.sqrt(v_b / c2) + eps)
    return w, b


def _matrix(
    docs: Sequence[Counter[str]], vocabulary: dict[str, int], idf: NDArray[np.float64]
) -> _Csr:
    """Sublinear-tf TF-IDF rows, L2-normalised (the usual recipe for short texts)."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for doc in docs:
        row = [(vocabulary[t], c) for t, c in doc.items() if t in vocabulary]
        values = [(1.0 + math.log(c)) * idf[i] for i, c in row]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        indices.extend(i for i, _ in row)
        data.extend(v / norm for v in values)
        indptr.append(len(indices))
    return _Csr(
        indptr=np.asarray(indptr, dtype=np.int64),
        indices=np.asarray(indices, dtype=np.int64),
        data=np.asarray(data, dtype=np.float64),
        n_cols=len(vocabulary),
    )


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -500, 500))), dtype=np.float64)
