"""The gateway's OpenAPI 3.1 document, generated from its routes and their events (internal).

Field schemas follow what the CloudEvents codec accepts for each declared
type (:mod:`eventbus._serialization`). Nothing here needs Starlette.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from .._events import Event
from .._serialization import _ENVELOPE, _hints
from ._auth import BearerTokens, HmacSignature
from ._cloudevents import BATCH, STRUCTURED
from ._request import HttpRequest
from ._routes import RouteSpec

__all__ = ["openapi_document", "schema_for"]

_ERROR: Final = {"$ref": "#/components/schemas/Error"}
_ERROR_STATUSES: Final = {
    "400": "the request or one of its fields is invalid",
    "401": "credentials are missing",
    "403": "the credentials are not allowed",
    "413": "the body is larger than the gateway's max_body",
    "429": "throttled: retry after the Retry-After header's seconds",
    "500": "the handler failed (an unmatched error) or the gateway is misconfigured",
    "415": "not a CloudEvents content mode",
    "502": "the handler returned a malformed proxy response",
    "503": "the bus is not running",
    "504": "the handler timed out",
}


def schema_for(hint: Any, _seen: frozenset[type] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of the values the codec accepts for a field declared as *hint*."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return schema_for(args[0], _seen)
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is dt.datetime:
        return {"type": "string", "format": "date-time"}
    if hint in (bytes, bytearray):
        return {"type": "string", "contentEncoding": "base64"}
    if hint is Decimal:
        return {"type": ["string", "number"]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        schemas = [schema_for(a, _seen) for a in arms]
        if len(arms) < len(args):
            schemas.append({"type": "null"})
        return {"anyOf": schemas}
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        value = schema_for(args[1], _seen) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value}
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and getattr(origin, "__name__", "") in ("Sequence", "Set", "AbstractSet")
    ):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return {"type": "array", "items": {}}
        return {"type": "array", "items": schema_for(args[0], _seen) if args else {}}
    if isinstance(hint, type) and issubclass(hint, Event):
        return {"type": "object", "description": f"a CloudEvent of type {hint.event_type()}"}
    if isinstance(hint, type) and attrs.has(hint):
        if hint in _seen:
            return {"type": "object"}
        return _object_schema(hint, (), _seen | {hint})
    return {}


def _object_schema(
    cls: type, skip: Iterable[str], seen: frozenset[type] = frozenset()
) -> dict[str, Any]:
    hints = _hints(cls)
    skipped = set(skip)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init or field.name in skipped:
            continue
        if issubclass(cls, Event) and field.name in _ENVELOPE:
            continue
        properties[field.name] = schema_for(hints.get(field.name, Any), seen)
        if field.default is attrs.NOTHING:
            required.append(field.name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _path_parameter(route: RouteSpec, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if route.event is not HttpRequest:
        hint = _hints(route.event).get(name, str)
        schema = schema_for(hint)
        if schema.get("type") not in ("string", "integer", "number", "boolean"):
            schema = {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _error_responses(statuses: Iterable[str]) -> dict[str, Any]:
    return {
        status: {
            "description": _ERROR_STATUSES.get(status, "an error"),
            "content": {"application/json": {"schema": _ERROR}},
        }
        for status in statuses
    }


def _operation(route: RouteSpec, secured: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": route.summary
        or (
            f"invoke subscription {route.target!r}"
            if route.kind == "invoke"
            else f"publish {route.target}"
        ),
    }
    if route.params:
        op["parameters"] = [_path_parameter(route, name) for name in route.params]
    if route.method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        if route.event is HttpRequest:
            op["requestBody"] = {
                "required": False,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        else:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _object_schema(route.event, route.params)}
                },
            }
    statuses = ["400", "413", "500", "503"]
    if secured:
        statuses += ["401", "403"]
    statuses.append("429")
    responses: dict[str, Any]
    if route.kind == "invoke":
        statuses += ["502", "504"]
        responses = {
            "200": {
                "description": "the handler's return value, as JSON",
                "content": {"application/json": {"schema": {}}},
            },
            "default": {
                "description": "an API Gateway proxy-style result sets its own status, "
                "headers and body"
            },
        }
    else:
        responses = {
            "202": {
                "description": "accepted by every matching subscription",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}
                },
            }
        }
    responses.update(_error_responses(sorted(statuses)))
    return op | {"responses": responses}


def _operation_id(route: RouteSpec) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in route.openapi_path).strip("_")
    return f"{route.method.lower()}_{slug or 'root'}"


def _security(auth: object) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    if isinstance(auth, BearerTokens):
        return {"bearer": {"type": "http", "scheme": "bearer"}}, [{"bearer": []}]
    if isinstance(auth, HmacSignature):
        return (
            {
                "hmacSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Eventbus-Signature",
                    "description": "sha256=<hex HMAC-SHA256 of '<X-Eventbus-Timestamp>.<body>'>",
                },
                "hmacTimestamp": {"type": "apiKey", "in": "header", "name": "X-Eventbus-Timestamp"},
            },
            [{"hmacSignature": [], "hmacTimestamp": []}],
        )
    return {}, []


def openapi_document(
    routes: Iterable[RouteSpec],
    *,
    title: str,
    version: str,
    auth: object,
    cloudevents: bool,
    metrics: bool,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a gateway with these *routes*."""
    secured = auth is not None
    schemes, security = _security(auth)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op = _operation(route, secured)
        if security:
            op["security"] = security
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = op
    if cloudevents:
        op = {
            "operationId": "post_events",
            "summary": "publish CloudEvents (structured, batched or binary content mode)",
            "requestBody": {
                "required": True,
                "content": {
                    STRUCTURED: {"schema": {"$ref": "#/components/schemas/CloudEvent"}},
                    BATCH: {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/CloudEvent"},
                        }
                    },
                },
            },
            "responses": {
                "202": {
                    "description": "published: one receipt, or a list of them for a batch",
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [
                                    {"$ref": "#/components/schemas/Receipt"},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "events": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Receipt"},
                                            }
                                        },
                                        "required": ["events"],
                                    },
                                ]
                            }
                        }
                    },
                }
            }
            | _error_responses(
                sorted(
                    ["400", "413", "415", "429", "500", "503"] + (["401", "403"] if secured else [])
                )
            ),
        }
        if security:
            op["security"] = security
        paths["/events"] = {"post": op}
    paths["/health"] = {
        "get": {
            "operationId": "get_health",
            "summary": "the bus's state",
            "responses": {
                status: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                    },
                }
                for status, text in (("200", "the bus is running"), ("503", "it is not"))
            },
        }
    }
    if metrics:
        paths["/metrics"] = {
            "get": {
                "operationId": "get_metrics",
                "summary": "Prometheus exposition of the bus's metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                }
                | _error_responses(["401", "403"] if secured else []),
            }
        }
        if security:
            paths["/metrics"]["get"]["security"] = security
    paths["/openapi.json"] = {
        "get": {
            "operationId": "get_openapi",
            "summary": "this document",
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    components: dict[str, Any] = {
        "schemas": {
            "Error": {
                "type": "object",
                "description": "AWS Lambda's error shape",
                "properties": {
                    "errorType": {"type": "string"},
                    "errorMessage": {"type": "string"},
                    "stackTrace": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["errorType", "errorMessage"],
            },
            "Receipt": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "subscriptions": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "subscriptions"],
            },
            "CloudEvent": {
                "type": "object",
                "properties": {
                    "specversion": {"const": "1.0"},
                    "id": {"type": "string", "minLength": 1},
                    "source": {"type": "string", "minLength": 1},
                    "type": {"type": "string", "minLength": 1},
                    "time": {"type": "string", "format": "date-time"},
                    "data": {"type": "object"},
                },
                "required": ["specversion", "id", "source", "type"],
            },
            "Health": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["running", "stopped"]},
                    "subscriptions": {"type": "integer"},
                    "outstanding": {"type": "integer"},
                },
                "required": ["status", "subscriptions", "outstanding"],
            },
        }
    }
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": components,
    }
