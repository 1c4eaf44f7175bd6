"""A user's own routing class, kept at arm's length.

`policy: my_module:MyRouter` runs code hybridsim did not write. If that code raises (in its constructor,
in `bind` or in `route`) or hands back something that is not a node, the run stops with one line that
names the class and the exception, as for any other mistake in the scenario; a traceback would read as
hybridsim's bug. Built-in policies are not wrapped: their failures are hybridsim's, and keep theirs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridsim.core.errors import HybridsimError

from ..cluster import Cluster
from ..cluster.node import Node
from .base import Request


def construct(cls: type, name: str, params: dict[str, Any]) -> Any:
    """`cls(**params)`, with any exception it raises reported as the user's, in one line."""
    try:
        return cls(**params)
    except HybridsimError:
        raise
    except Exception as error:
        raise HybridsimError(
            f"policy {name}: {cls.__name__}({_given(params)}) raised {_said(error)}"
        ) from None


class UserPolicy:
    """Forwards to the user's policy; turns its exceptions and wrong answers into one-line errors."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name
        self.needs_estimates = bool(getattr(inner, "needs_estimates", False))

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        hook = getattr(self._inner, "bind", None)
        if hook is None:
            return
        try:
            hook(view, rng)
        except HybridsimError:
            raise
        except Exception as error:
            raise HybridsimError(f"policy {self._name}: {self._class}.bind raised {_said(error)}") from None

    def route(self, request: Request, view: Cluster) -> Node:
        try:
            node = self._inner.route(request, view)
        except HybridsimError:
            raise
        except Exception as error:
            raise HybridsimError(
                f"policy {self._name}: {self._class}.route raised {_said(error)} (request {request.index})"
            ) from None
        if not isinstance(node, Node):
            raise HybridsimError(
                f"policy {self._name}: {self._class}.route returned {type(node).__name__}, not a node of "
                f"the cluster (request {request.index})"
            )
        return node

    @property
    def _class(self) -> str:
        return type(self._inner).__name__


def _said(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _given(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())
