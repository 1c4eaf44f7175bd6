"""The extra ledger a batching node keeps: when each request got its first token, how its tokens were spaced,
which passes it paid for, and how full the node was between changes of its batch.

A batch-1 node hands back a whole answer; a batching node streams tokens, and the user feels two numbers
besides the end-to-end latency: the time to the first token (TTFT: the end of the request's prefill) and
the time between tokens (TBT: one decode iteration, longer when someone else's prefill pauses the batch).
Energy is paid per pass and shared out to the requests in the pass by the tokens each processed: a
prefill pass by prompt tokens (recomputed tokens for a preempted request), a decode iteration equally
(each running request gets one token). So the requests' shares add up to the node's active energy exactly.

Like `metrics/records.py`, every column is a preallocated flat array indexed by request id.
"""

from __future__ import annotations

from array import array

import numpy as np

NAN = float("nan")


class ServingRecords:
    """Per-request columns of continuously batching pools (unused rows stay NaN / 0)."""

    def __init__(self, requests: int) -> None:
        zeros = bytes(8 * requests)
        self.first_token_s = array("d", [NAN]) * requests
        """When the request's first prefill ended (absolute time, s)."""
        self.tbt_max_s = array("d", zeros)
        """Longest gap between two of its consecutive tokens (s)."""
        self.prefill_j = array("d", zeros)
        """Its share of the prefill passes it was in (J), recomputation included."""
        self.prefill_cpu_j = array("d", zeros)
        self.decode_j = array("d", zeros)
        """Its share of the decode iterations it was in (J)."""
        self.decode_cpu_j = array("d", zeros)
        self.preemptions = array("q", zeros)
        """Times it was preempted (its KV dropped, recomputed later)."""
        # working state of a request while it is on a node
        self.generated = array("q", zeros)
        """Tokens generated as of `admit_clock`."""
        self.admit_clock = array("q", zeros)
        """The node's decode-step counter when the request joined the running batch."""
        self.share_at_admit = array("d", zeros)
        """The node's cumulative decode energy per request at that moment (J)."""
        self.share_cpu_at_admit = array("d", zeros)
        self.log_start = array("q", zeros)
        """First entry of the node's gap log that applies to the request."""
        self.last_token_s = array("d", zeros)
        """When it last received a token."""


class PassLog:
    """One row per pass or run of decode iterations on a pool: when, how long, how big, how full, what energy.

    Rows go into one flat array of floats (a pass is logged with one call; counts are exact as floats up to
    2**53) and become typed columns at the end of the run.
    """

    FIELDS = ("node", "start_s", "duration_s", "batch", "kv_tokens", "energy_j", "tokens", "prefill")
    """node: global index of the node that ran the pass; batch: requests in the pass (running batch for
    decodes, admitted prompts for a prefill); kv_tokens: KV tokens held at its start; tokens: output tokens
    it generated; prefill: 1 for a prefill (or chunked, mixed) pass, 0 for decode iterations."""

    def __init__(self) -> None:
        self.rows = array("d")

    def add(
        self,
        node: int,
        start: float,
        duration: float,
        batch: int,
        kv: float,
        energy: float,
        tokens: int,
        prefill: int,
    ) -> None:
        self.rows.extend((node, start, duration, batch, kv, energy, tokens, prefill))

    def columns(self) -> dict[str, np.ndarray]:
        """The log as numpy columns."""
        rows = np.frombuffer(self.rows, dtype=np.float64).reshape(-1, len(self.FIELDS))
        kinds = {"node": np.int64, "batch": np.int64, "tokens": np.int64}
        columns = {name: rows[:, k].astype(kinds.get(name, np.float64)) for k, name in enumerate(self.FIELDS)}
        columns["prefill"] = rows[:, 7] != 0.0
        return columns
