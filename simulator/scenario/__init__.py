"""Scenario YAML files: validated once at the edge, then handed on as typed objects."""
