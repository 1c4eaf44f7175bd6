"""Output threshold: short answers to the frugal system, long answers to the fast one.

The paper's second rule routes on the answer's length n, which the router cannot know when the request
arrives. Here it routes on the predictor's guess (the truth only under an oracle): comparing the same
threshold with an oracle and with a realistic predictor measures what the paper's assumption is worth.
"""

from __future__ import annotations

from .base import Request, ThresholdPolicy


class OutputThreshold(ThresholdPolicy):
    """Route on the predicted answer length n: n <= threshold goes to `below`."""

    def size(self, request: Request) -> float:
        return request.predicted_output_tokens
