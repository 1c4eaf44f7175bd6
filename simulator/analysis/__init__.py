"""Closed-form analyses that need no simulation: threshold sweeps between two systems."""
