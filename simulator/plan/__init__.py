"""Planning a datacenter: search node counts, routers and settings for the least energy, cost or carbon
that meets the SLOs (`kind: plan` scenarios; see `simulator/plan/kind.py`)."""
