"""Profiles: measured costs of one model on one system, and the cost models built from them."""
