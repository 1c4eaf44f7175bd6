"""File names made from what a user wrote (policy names, sweep values): safe, short and distinct.

A run writes one file per policy and one folder per sweep value, named after them. A label may hold any
character, be thousands of characters long, or differ from another only in characters a file name cannot
hold; the file names must still be valid and never land on each other.
"""

from __future__ import annotations

import re

FILE_NAME_CHARS = 120
"""Longest file or folder name made from a label (the file system's limit is 255 bytes)."""


def file_names(labels: list[str]) -> list[str]:
    """A file name per label: safe characters, at most `FILE_NAME_CHARS` of them, and distinct even where
    two labels differ only in characters a file name cannot hold (`a b`, `a_b`) or in case."""
    names: list[str] = []
    taken: set[str] = set()
    for label in labels:
        base = re.sub(r"[^A-Za-z0-9._=-]+", "_", label)[:FILE_NAME_CHARS]
        name, count = base, 1
        while name.lower() in taken:
            count += 1
            name = f"{base}~{count}"
        taken.add(name.lower())
        names.append(name)
    return names
