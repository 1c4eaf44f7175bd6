"""How long will the answer be? What a router can guess when a request arrives.

The paper's output-threshold rule assumes the router knows each answer's length n in advance. A real
router knows the prompt and the client's `max_tokens`, nothing more; the answer's length is known only when
the last token is out. A predictor turns what the router knows into a guess:

* `max_tokens`: the client's limit (always an over-estimate; the cautious guess with no history);
* `oracle`: the true length, optionally blurred by a relative noise (`noise: 0.2` is a guess off by about
  20%), for asking "what if we could predict well?";
* `bucket_mean`: the mean answer length of the requests already *finished* whose prompts fell in the same
  power-of-two length bucket (a learning router; before any history, `prior_tokens`, else half of
  `max_tokens`).

Predictions are clipped to [1, max_tokens]. Fixed predictions (the first two) are computed once for the
whole run, vectorised; the learning one is asked per arrival and told of every finished request.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hybridsim.core.errors import HybridsimError

PREDICTORS = ("max_tokens", "oracle", "bucket_mean")


class Predictor(Protocol):
    """Guesses each request's answer length from what the router can know."""

    name: str
    learns: bool
    """False: `prepare` returns every prediction up front; True: `predict` / `observe` during the run."""

    def prepare(
        self,
        input_tokens: np.ndarray,
        max_tokens: np.ndarray,
        output_tokens: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray | None: ...

    def predict(self, index: int) -> float: ...

    def observe(self, index: int) -> None: ...


class MaxTokensPredictor:
    """Predict the client's `max_tokens` limit."""

    name = "max_tokens"
    learns = False

    def prepare(
        self,
        input_tokens: np.ndarray,
        max_tokens: np.ndarray,
        output_tokens: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        return np.asarray(max_tokens, dtype=np.float64)

    def predict(self, index: int) -> float:  # pragma: no cover - fixed predictions only
        raise NotImplementedError

    def observe(self, index: int) -> None:  # pragma: no cover - fixed predictions only
        raise NotImplementedError


class OraclePredictor(MaxTokensPredictor):
    """Predict the true length, times (1 + noise * a standard normal draw)."""

    name = "oracle"

    def __init__(self, noise: float = 0.0) -> None:
        if noise < 0:
            raise HybridsimError(f"noise: must be >= 0, got {noise}")
        self.noise = noise
        """Relative standard deviation of the guess (0: the exact length)."""

    def prepare(
        self,
        input_tokens: np.ndarray,
        max_tokens: np.ndarray,
        output_tokens: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        truth = np.asarray(output_tokens, dtype=np.float64)
        if self.noise == 0:
            return truth
        guess = truth * (1.0 + self.noise * rng.standard_normal(truth.size))
        return np.clip(guess, 1.0, np.asarray(max_tokens, dtype=np.float64))


class BucketMeanPredictor:
    """Predict the running mean answer length of finished requests with a similar prompt length."""

    name = "bucket_mean"
    learns = True

    def __init__(self, prior_tokens: float | None = None) -> None:
        if prior_tokens is not None and prior_tokens < 1:
            raise HybridsimError(f"prior_tokens: must be >= 1, got {prior_tokens}")
        self.prior_tokens = prior_tokens
        """Guess before any request finished (None: half the request's max_tokens)."""
        self._bucket: list[int] = []
        self._output: list[int] = []
        self._limit: list[float] = []
        self._sums: list[float] = []
        self._counts: list[int] = []
        self._total = 0.0
        self._seen = 0

    def prepare(
        self,
        input_tokens: np.ndarray,
        max_tokens: np.ndarray,
        output_tokens: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        buckets = np.floor(np.log2(np.maximum(np.asarray(input_tokens, dtype=np.float64), 1.0))).astype(
            np.int64
        )
        self._bucket = buckets.tolist()
        self._output = np.asarray(output_tokens, dtype=np.int64).tolist()
        self._limit = np.asarray(max_tokens, dtype=np.float64).tolist()
        size = int(buckets.max()) + 1 if buckets.size else 1
        self._sums, self._counts = [0.0] * size, [0] * size
        self._total, self._seen = 0.0, 0
        return None

    def predict(self, index: int) -> float:
        bucket = self._bucket[index]
        count = self._counts[bucket]
        if count:
            guess = self._sums[bucket] / count
        elif self._seen:
            guess = self._total / self._seen
        else:
            guess = self.prior_tokens if self.prior_tokens is not None else self._limit[index] / 2
        limit = self._limit[index]
        return 1.0 if guess < 1.0 else (limit if guess > limit else guess)

    def observe(self, index: int) -> None:
        bucket, length = self._bucket[index], self._output[index]
        self._sums[bucket] += length
        self._counts[bucket] += 1
        self._total += length
        self._seen += 1


def make_predictor(kind: str, noise: float = 0.0, prior_tokens: float | None = None) -> Predictor:
    """The predictor called `kind` with its parameters."""
    if kind == "max_tokens":
        return MaxTokensPredictor()
    if kind == "oracle":
        return OraclePredictor(noise)
    if kind == "bucket_mean":
        return BucketMeanPredictor(prior_tokens)
    raise HybridsimError(f"predictor: unknown kind {kind!r} (known: {', '.join(PREDICTORS)})")
