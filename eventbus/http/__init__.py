"""eventbus over HTTP: the gateway (``eventbus[http]``) and the typed request event.

:class:`HttpRequest` needs no extra. The gateway is built on Starlette and is
loaded on first use, so ``import eventbus.http`` works without the extra.
"""

from __future__ import annotations

from ._request import HttpRequest as HttpRequest

__all__ = ["HttpRequest"]
