"""Per-request records (columnar, preallocated) and the summaries an operator reads."""
