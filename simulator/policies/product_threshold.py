"""Product threshold: route on the size of the whole job, prompt times answer.

Without a KV cache a request's cost grows with both lengths and their product; the thesis's third rule
sends a request to the frugal system when m * n <= T^2 (n predicted, as for the output threshold).
"""

from __future__ import annotations

from .base import Request, ThresholdPolicy


class ProductThreshold(ThresholdPolicy):
    """Route on m * n_predicted: at most threshold**2 goes to `below`."""

    def size(self, request: Request) -> float:
        return (request.input_tokens * request.predicted_output_tokens) ** 0.5
