"""Predictors guess answer lengths only from what a router may know."""

from __future__ import annotations

import numpy as np
import pytest
from hybridsim.simulator.predictors import make_predictor

M = np.array([10, 12, 100, 110, 1000])
N = np.array([40, 60, 300, 100, 5])
LIMIT = np.full(5, 512)


def test_max_tokens_predicts_the_limit() -> None:
    guesses = make_predictor("max_tokens").prepare(M, LIMIT, N, np.random.default_rng(0))
    assert guesses.tolist() == [512.0] * 5


def test_the_exact_oracle_knows_and_the_noisy_one_is_off_by_its_noise() -> None:
    assert make_predictor("oracle").prepare(M, LIMIT, N, np.random.default_rng(0)).tolist() == N.tolist()
    n = np.full(100_000, 100)
    guesses = make_predictor("oracle", noise=0.2).prepare(
        n, np.full(n.size, 512), n, np.random.default_rng(1)
    )
    assert (guesses >= 1).all() and (guesses <= 512).all()
    assert np.std(guesses / n - 1) == pytest.approx(0.2, rel=0.02)


def test_bucket_mean_learns_from_finished_requests_only() -> None:
    predictor = make_predictor("bucket_mean", prior_tokens=50)
    assert predictor.learns
    predictor.prepare(M, LIMIT, N, np.random.default_rng(0))
    assert predictor.predict(0) == 50  # nothing finished yet: the prior
    predictor.observe(0)  # m = 10 (bucket 8-15) answered 40 tokens
    assert predictor.predict(1) == 40  # same bucket
    assert predictor.predict(2) == 40  # unseen bucket: mean of everything so far
    predictor.observe(1)
    predictor.observe(3)  # m = 110 (bucket 64-127) answered 100
    assert predictor.predict(1) == 50  # (40 + 60) / 2
    assert predictor.predict(2) == 100


def test_bucket_mean_without_a_prior_guesses_half_the_limit() -> None:
    predictor = make_predictor("bucket_mean")
    predictor.prepare(M, LIMIT, N, np.random.default_rng(0))
    assert predictor.predict(4) == 256
