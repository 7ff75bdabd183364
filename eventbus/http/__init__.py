"""eventbus over HTTP: the gateway (``eventbus[http]``) and the typed request event.

:class:`HttpRequest`, the authenticators and the errors need no extra. The
gateway is built on Starlette; it and the authenticators are loaded on first
use (PEP 562), so ``import eventbus.http`` works without the extra, and
``eventbus.http.Gateway`` then raises an :class:`ImportError` naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._errors import GatewayConfigError as GatewayConfigError
from ._request import HttpRequest as HttpRequest

if TYPE_CHECKING:
    from ._auth import Authenticator as Authenticator
    from ._auth import BearerTokens as BearerTokens
    from ._auth import Denied as Denied
    from ._auth import HmacSignature as HmacSignature
    from ._gateway import Gateway as Gateway

__all__ = [
    "Authenticator",
    "BearerTokens",
    "Denied",
    "Gateway",
    "GatewayConfigError",
    "HmacSignature",
    "HttpRequest",
]

# Loaded on first use: importing eventbus (which imports HttpRequest from
# here) does not import the gateway, Starlette or the authenticators.
_LAZY = {
    "Authenticator": "eventbus.http._auth",
    "BearerTokens": "eventbus.http._auth",
    "Denied": "eventbus.http._auth",
    "Gateway": "eventbus.http._gateway",
    "HmacSignature": "eventbus.http._auth",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventbus.http' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    if not attrs.has(value):  # attrs classes resolve their annotations in their own module
        value.__module__ = __name__  # tracebacks and reprs show the public path
    globals()[name] = value
    return value


GatewayConfigError.__module__ = __name__


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
