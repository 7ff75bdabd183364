"""Authentication: BearerTokens, HmacSignature and custom authenticators."""

from __future__ import annotations

import anyio
import httpx
import pytest
from gateway_helpers import client
from hypothesis import given
from hypothesis import strategies as st

from eventbus import Bus, HttpRequest
from eventbus.http import Authenticator, BearerTokens, Denied, Gateway, HmacSignature


def request(headers: dict[str, str] | None = None, body: bytes = b"") -> HttpRequest:
    """A request as an authenticator sees it."""
    return HttpRequest(method="POST", path="/x", headers=headers or {}, body=body)


# -- BearerTokens ----------------------------------------------------------------------


def test_bearer_admits_a_known_token() -> None:
    """A request with one of the tokens is admitted."""
    auth = BearerTokens(["old", "new"])
    assert auth(request({"Authorization": "Bearer new"})) is None
    assert auth(request({"authorization": "bearer old"})) is None


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "missing Authorization"),
        ("Basic abc", "must read 'Bearer <token>'"),
        ("Bearer", "must read 'Bearer <token>'"),
        ("Bearer wrong", "invalid bearer token"),
    ],
)
def test_bearer_refuses_with_401(header: str | None, match: str) -> None:
    """Missing, malformed and wrong tokens are 401 with a Bearer challenge."""
    auth = BearerTokens("secret")
    denied = auth(request({} if header is None else {"authorization": header}))
    assert isinstance(denied, Denied)
    assert denied.status == 401
    assert denied.challenge is not None
    assert denied.challenge.startswith("Bearer")
    assert match in denied.message


def test_bearer_repr_hides_tokens() -> None:
    """The repr never shows a token."""
    assert "secret" not in repr(BearerTokens("secret"))


@pytest.mark.parametrize("tokens", [[], [""], [1]])
def test_bearer_needs_tokens(tokens: list[object]) -> None:
    """BearerTokens refuses an empty list, empty or non-string tokens."""
    with pytest.raises(ValueError, match="BearerTokens"):
        BearerTokens(tokens)  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_bearer_never_raises_on_any_header(header: str) -> None:
    """Any Authorization header gives None or a Denied, never an exception."""
    result = BearerTokens("t0ken")(request({"authorization": header}))
    assert result is None or isinstance(result, Denied)


# -- HmacSignature ---------------------------------------------------------------------


class Now:
    """A settable wall clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_hmac_admits_a_signed_request() -> None:
    """A body signed with sign() is admitted."""
    auth = HmacSignature("k", now=Now(1_700_000_000))
    assert auth(request(auth.sign(b'{"a":1}'), b'{"a":1}')) is None


def test_hmac_signature_is_documented_form() -> None:
    """The signature is sha256=hex(HMAC-SHA256(secret, '<timestamp>.<body>'))."""
    import hashlib
    import hmac

    headers = HmacSignature(b"k").sign(b"body", timestamp=1234)
    expected = hmac.new(b"k", b"1234.body", hashlib.sha256).hexdigest()
    assert headers == {"X-Eventbus-Timestamp": "1234", "X-Eventbus-Signature": f"sha256={expected}"}


def test_hmac_refuses_missing_headers_with_401() -> None:
    """No signature headers: 401."""
    denied = HmacSignature("k")(request())
    assert isinstance(denied, Denied)
    assert denied.status == 401


def test_hmac_refuses_a_tampered_body_with_403() -> None:
    """A body that differs from the one signed: 403."""
    auth = HmacSignature("k", now=Now(1000))
    denied = auth(request(auth.sign(b"original"), b"tampered"))
    assert isinstance(denied, Denied)
    assert denied.status == 403
    assert "does not match" in denied.message


def test_hmac_refuses_a_stale_timestamp() -> None:
    """A timestamp outside max_skew: 403."""
    now = Now(10_000)
    auth = HmacSignature("k", max_skew=60, now=now)
    headers = auth.sign(b"x")
    now.t += 61
    denied = auth(request(headers, b"x"))
    assert isinstance(denied, Denied)
    assert "away from the server's clock" in denied.message


def test_hmac_refuses_a_replay() -> None:
    """The same signed request twice within the window: the second is 403."""
    auth = HmacSignature("k", now=Now(5000))
    headers = auth.sign(b"pay 10")
    assert auth(request(headers, b"pay 10")) is None
    denied = auth(request(headers, b"pay 10"))
    assert isinstance(denied, Denied)
    assert "replay" in denied.message


def test_hmac_forgets_signatures_after_the_window() -> None:
    """Remembered signatures expire, so memory stays bounded by the window."""
    now = Now(5000)
    auth = HmacSignature("k", max_skew=10, now=now)
    assert auth(request(auth.sign(b"a"), b"a")) is None
    now.t += 100
    assert auth(request(auth.sign(b"b"), b"b")) is None
    assert len(auth._seen) == 1


@pytest.mark.parametrize(("secret", "skew"), [("", 300), ("k", 0), ("k", float("inf"))])
def test_hmac_checks_its_arguments(secret: str, skew: float) -> None:
    """An empty secret or a non-positive skew is refused."""
    with pytest.raises(ValueError, match="HmacSignature"):
        HmacSignature(secret, max_skew=skew)


@given(
    st.dictionaries(
        st.sampled_from(["x-eventbus-timestamp", "x-eventbus-signature", "other"]),
        st.text(max_size=80),
    ),
    st.binary(max_size=64),
)
def test_hmac_never_raises_on_any_headers(headers: dict[str, str], body: bytes) -> None:
    """Any headers and body give None or a Denied, never an exception."""
    result = HmacSignature("k", now=Now(1000))(request(headers, body))
    assert result is None or isinstance(result, Denied)


# -- through the gateway -----------------------------------------------------------------


async def test_gateway_answers_401_with_challenge(routed_bus: Bus) -> None:
    """A request the authenticator refuses answers 401 with WWW-Authenticate."""
    app = Gateway(routed_bus, auth=BearerTokens("s3cret"))
    app.route("GET", "/x", invoke="echo")
    async with client(app) as c:
        refused = await c.get("/x")
        admitted = await c.get("/x", headers={"authorization": "Bearer s3cret"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["errorType"] == "Unauthorized"
    assert admitted.status_code == 201


async def test_gateway_hmac_end_to_end(routed_bus: Bus) -> None:
    """A signed POST passes; the same POST with a changed body answers 403."""
    auth = HmacSignature("shared")
    app = Gateway(routed_bus, auth=auth)
    app.route("POST", "/x", invoke="echo")
    body = b'{"amount": 10}'
    async with client(app) as c:
        ok = await c.post("/x", content=body, headers=auth.sign(body))
        bad = await c.post("/x", content=b'{"amount": 99}', headers=auth.sign(body))
    assert ok.status_code == 201
    assert bad.status_code == 403
    assert bad.json()["errorType"] == "Forbidden"


async def test_custom_async_authenticator_may_raise_denied(routed_bus: Bus) -> None:
    """An async callable raising Denied(status=403) answers 403."""

    async def only_admins(req: HttpRequest) -> None:
        await anyio.lowlevel.checkpoint()
        if req.header("x-role") != "admin":
            raise Denied("admins only", status=403)

    assert isinstance(only_admins, Authenticator)
    app = Gateway(routed_bus, auth=only_admins)
    app.route("GET", "/x", invoke="echo")
    async with client(app) as c:
        refused = await c.get("/x", headers={"x-role": "user"})
        admitted = await c.get("/x", headers={"x-role": "admin"})
    assert refused.status_code == 403
    assert refused.json() == {"errorType": "Forbidden", "errorMessage": "admins only"}
    assert admitted.status_code == 201


async def test_authenticator_returning_junk_is_a_500(routed_bus: Bus) -> None:
    """An authenticator returning neither None nor Denied answers 500 (a server bug)."""
    app = Gateway(routed_bus, auth=lambda req: True)
    app.route("GET", "/x", invoke="echo")
    async with client(app) as c:
        response = await c.get("/x")
    assert response.status_code == 500


async def test_auth_covers_events_and_metrics_not_health(routed_bus: Bus) -> None:
    """/events and /metrics need credentials; /health and /openapi.json do not."""
    app = Gateway(routed_bus, auth=BearerTokens("s"))
    async with client(app) as c:
        events = await c.post("/events", content=b"{}")
        metrics = await c.get("/metrics")
        health = await c.get("/health")
        spec = await c.get("/openapi.json")
    assert (events.status_code, metrics.status_code) == (401, 401)
    assert (health.status_code, spec.status_code) == (200, 200)


def test_denied_status_is_401_or_403() -> None:
    """Denied refuses other statuses."""
    with pytest.raises(ValueError, match="401 or 403"):
        Denied("no", status=404)


def test_gateway_auth_must_be_callable() -> None:
    """auth= must be callable."""
    from eventbus.http import GatewayConfigError

    with pytest.raises(GatewayConfigError, match="auth"):
        Gateway(Bus(), auth="token")  # type: ignore[arg-type]


async def test_httpx_client_sends_signed_headers() -> None:
    """sign() returns headers httpx accepts as they are."""
    headers = HmacSignature("k").sign(b"x")
    assert httpx.Headers(headers)["x-eventbus-signature"].startswith("sha256=")


async def test_permission_error_from_an_authenticator_is_a_403(routed_bus: Bus) -> None:
    """A plain PermissionError raised by an authenticator answers 403 with its message."""

    def closed(req: HttpRequest) -> None:
        raise PermissionError("closed on Sundays")

    app = Gateway(routed_bus, auth=closed)
    app.route("GET", "/x", invoke="echo")
    async with client(app) as c:
        response = await c.get("/x")
    assert response.status_code == 403
    assert response.json() == {"errorType": "Forbidden", "errorMessage": "closed on Sundays"}
