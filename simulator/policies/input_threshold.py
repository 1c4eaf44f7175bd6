"""Input threshold: short prompts to the frugal system, long prompts to the fast one.

The paper's headline rule: a request whose prompt has at most T tokens goes to the M1 Pro pool, the rest
to the A100 pool. The prompt length is known at the door, so this router needs no prediction.
"""

from __future__ import annotations

from .base import Request, ThresholdPolicy


class InputThreshold(ThresholdPolicy):
    """Route on the prompt length m: m <= threshold goes to `below`."""

    def size(self, request: Request) -> float:
        return request.input_tokens
