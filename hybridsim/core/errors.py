"""The one error type a user sees.

Everything that is the user's fault (a malformed scenario, an unknown policy, a missing profile, tokens
outside a profile's range) raises `HybridsimError` with one line that names the problem and where it
is. The CLI prints that line and exits with code 2; anything else is a bug and keeps its traceback.
"""


class HybridsimError(Exception):
    """A problem with the user's input, reported as one line."""

    exit_code = 2


class Interrupted(HybridsimError):
    """Ctrl-C with something to say (where the finished work is): one line, exit code 130."""

    exit_code = 130


class ProfileRangeError(HybridsimError):
    """Token counts outside the range a profile was measured over."""


def shown(value: object) -> str:
    """A value from a user's file as a message quotes it: `-3`, `nan`, `'abc'` (never `np.int64(-3)`)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) and not isinstance(value, (str, bytes)) else value)
