"""The largest numbers hybridsim accepts, so that a typo cannot ask for more than a machine can hold.

A day of requests lives in a handful of int64/float64 arrays (about 64 bytes a request), a pool in arrays
per node; numpy's int64 wraps silently at 2**63. Every count a user can write (scenario, trace, workload
table, command-line option) is checked against these limits at the edge, and the message names the limit.
"""

from __future__ import annotations

INT64_MAX = 2**63 - 1
"""numpy's largest integer: seeds and any other whole number must fit."""
TOKENS_MAX = 2**20
"""The longest prompt or answer (1,048,576 tokens): beyond every model's context window."""
MAX_REQUESTS = 50_000_000
"""Most requests one run may simulate (about 3 GB of per-request arrays before any bookkeeping)."""
MAX_NODES = 1_000_000
"""Most nodes one pool may hold."""
MAX_WEIGHT = 10**12
"""Largest `count` of one row of a workload histogram (sums stay exact in int64)."""
MAX_SECONDS = 1e12
"""Latest arrival one run may simulate (about 31,700 years): beyond it float64 seconds lose whole
milliseconds, and a rate that small is a typo."""
