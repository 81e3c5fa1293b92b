"""Property: whatever a client sends to any public route through the real Envoy — NUL, invalid
unicode escapes, huge strings, deep nesting, wrong types, out-of-range integers, bad cursors, odd
headers — the answer is never a 5xx, every error is the seed envelope, and the ledger still verifies.

Routes come from the protos' google.api.http rules (tests/support/routes.py), so a new endpoint is
covered without being listed here. Bounded: MAX_EXAMPLES per route (a few seconds each).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.kit.pagination import encode_cursor
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.e2e.test_tasks import grant_purchased
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.routes import Route, public_routes
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id

MAX_EXAMPLES = 50
ROUTES = public_routes()

# --- values -----------------------------------------------------------------------------------

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: json.dumps sends it as the escape \ud800
    "\udc00\ud800",
    "\U0001f600",
    "é",
    "\u202e",
    "../../etc/passwd",
    "%00",
    "%ff",
    "' OR '1'='1",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "null",
    "1e999",
    "image_analysis",
    "video_generation",
    "pending",
    "done",
    "failed",
    "free",
    "pro",
    "credits_10",
    "pm_card_visa",
    encode_cursor(2**63),
    encode_cursor(2**63 - 1),
    encode_cursor(10**30),
    "djE6LTE",
]
texts = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=40),
    st.integers(1000, 80_000).map(lambda n: "x" * n),
    st.integers(1, 3000).map(lambda n: "é" * n),
)
# URLs stay under httpx's 64 KiB limit (Envoy answers longer ones with its own 431/414).
url_texts = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=40),
    st.integers(1000, 20_000).map(lambda n: "x" * n),
    st.integers(1, 2000).map(lambda n: "é" * n),
)
ints = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from([0, -1, 1, 100, 101, 2**31, -(2**31) - 1, 2**53 + 1, 2**63, 2**64, 10**30]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)


def nested(levels: int, *, lists: bool = False) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value] if lists else {"a": value}
    return value


deep = st.builds(nested, st.integers(1, 120), lists=st.booleans())
shallow = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
json_values = st.one_of(shallow, shallow, deep)


# Words some field takes, so that a fair share of requests gets past the service's own checks and
# does real work (creates, charges, cancels) while the other fields are hostile.
WORDS = st.sampled_from(
    [
        "image_analysis",
        "video_generation",
        "advanced_editing",
        "pending",
        "processing",
        "done",
        "failed",
        "cancelled",
        "free",
        "pro",
        "enterprise",
        "credits_10",
        "credits_50",
        "me@example.com",
        "Ann",
    ]
)
small_ints = st.integers(0, 100)


def declared(field: FieldDescriptor) -> Any:
    """The field's `(studiox.api.v1.field)` annotation (values, format, ...), if any."""
    try:
        extension: Any = descriptor_pool.Default().FindExtensionByName("studiox.api.v1.field")
    except KeyError:
        return None
    options = field.GetOptions()
    return options.Extensions[extension] if options.HasExtension(extension) else None


def plausible_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    contract = declared(field)
    if field.message_type is not None:
        return st.dictionaries(WORDS, WORDS | small_ints, max_size=3)
    if field.type == FieldDescriptor.TYPE_STRING:
        if contract is not None and contract.values:
            return st.sampled_from(list(contract.values))
        if contract is not None and contract.format == "email":
            return st.sampled_from(["me@example.com", "Ann.B@Example.org"])
        return WORDS
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    return small_ints


def field_values(field: FieldDescriptor, *, url: bool = False) -> st.SearchStrategy[Any]:
    """A plausible value half of the time, else a hostile one of the right type or anything at all
    (wrong types, deep JSON)."""
    if field.message_type is not None:
        plausible: st.SearchStrategy[Any] = st.dictionaries(WORDS, WORDS | small_ints, max_size=3)
        hostile: st.SearchStrategy[Any] = st.one_of(
            st.dictionaries(st.text(max_size=8), json_values, max_size=4), deep
        )
    elif field.type == FieldDescriptor.TYPE_STRING:
        plausible, hostile = WORDS, url_texts if url else texts
    elif field.type == FieldDescriptor.TYPE_BOOL:
        plausible = hostile = st.booleans()
    else:
        plausible, hostile = small_ints, ints
    if url:
        return st.one_of(plausible, hostile, ints)
    return st.one_of(plausible, plausible, hostile, json_values)


RAW_BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b'"text"',
    b'{"type": "\\ud800"}',
    b'{"type": "\\u0000"}',
    b'{"inputData": {"\\u0000": 1}}',
    b'{"type": "\\x41"}',
    b"\xff\xfe\x00",
    b'{"a":1,"a":2}',
    b"{" * 5000,
    b"[" * 5000,
    b'{"limit": 1e999}',
    b'{"credits": NaN}',
    b'{"planName": ' + b'"' + b"p" * 200_000 + b'"}',
]
RAW_QUERIES = ["%zz", "%ff", "%00", "limit=%", "status=%C3%28", "cursor=" + "A" * 5000, "a=1&a=2"]
RAW_PATH_VALUES = ["%C3%28", "%00", "%2F", "..", "%FF%FE", "x" * 3000]


@dataclass(frozen=True)
class Caller:
    user: str
    token: str
    task_id: str


def header_text(max_size: int) -> st.SearchStrategy[bytes]:
    """Header values h11 will send: visible ASCII, or Latin-1 bytes (obs-text)."""
    return st.one_of(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=max_size).map(
            str.encode
        ),
        st.sampled_from([b"\xe9t\xe9", b"\xff", b"a\xc3\x28"]),
    )


class Probe:
    """One generated request (a plain class: hypothesis prints it with __repr__)."""

    def __init__(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: bytes | None
    ) -> None:
        self.method, self.url, self.headers, self.content = method, url, headers, content

    def __repr__(self) -> str:
        body = self.content if self.content is None or len(self.content) < 300 else b"<long>"
        shown = [(k, v if len(v) < 300 else b"<long>") for k, v in self.headers]
        return f"Probe({self.method} {self.url[:300]!r}, headers={shown}, content={body!r})"


@st.composite
def mostly_present(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Each field present most of the time (hypothesis leans to small integers: absent on 4)."""
    return {name: draw(values) for name, values in fields.items() if draw(st.integers(0, 4)) < 4}


@st.composite
def one_hostile(draw: st.DrawFn, route: Route, *, url: bool) -> dict[str, Any]:
    """Every field plausible but at most one, so the request reaches the service's real work
    (creates, charges, refunds) with a single hostile value riding along."""
    fields = route.fields()
    odd = draw(st.sampled_from([None, *fields])) if fields else None
    return {
        f.json_name: draw(field_values(f, url=url) if f is odd else plausible_values(f))
        for f in fields
    }


@st.composite
def probes(draw: st.DrawFn, route: Route, caller: Caller) -> Probe:
    headers: dict[str, bytes] = {}
    credential = draw(st.sampled_from(["user"] * 8 + ["internal"] * 2 + ["none", "junk"]))
    if credential == "user":
        headers["authorization"] = f"Bearer {caller.token}".encode()
    elif credential == "junk":
        headers["authorization"] = b"Bearer x" + draw(header_text(300))
    elif credential == "internal":
        headers["x-internal-token"] = INTERNAL_TOKEN.encode()
    for name, size in (("idempotency-key", 300), ("x-request-id", 200), ("stripe-signature", 200)):
        if draw(st.booleans()):
            value = draw(header_text(size))
            if value:
                headers[name] = value
    if draw(st.integers(0, 9)) == 0:
        headers["x-junk"] = b"j" * draw(st.integers(1, 80_000))

    path_values = {
        name: draw(
            st.one_of(
                st.just(caller.task_id),
                st.sampled_from(RAW_PATH_VALUES),
                url_texts.map(lambda t: urllib.parse.quote(t, safe="", errors="surrogatepass")),
            )
        )
        for name in route.path_params
    }
    url = route.path(path_values)

    content: bytes | None = None
    fields = {f.json_name: field_values(f) for f in route.fields()}
    query_fields = {f.json_name: field_values(f, url=True) for f in route.fields()}
    if route.body == "*":
        if draw(st.integers(0, 3)) == 0:
            content = draw(st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=200)))
        else:
            body = draw(mostly_present(fields) | one_hostile(route, url=False))
            body.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=1)))
            content = json.dumps(body).encode()
        content_type = draw(
            st.sampled_from(
                ["application/json", "application/json; charset=utf-8", "text/plain", None]
            )
        )
        if content_type:
            headers["content-type"] = content_type.encode()
    elif route.body:
        content = draw(st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=300)))
    else:
        if draw(st.integers(0, 4)) == 0:
            url += "?" + draw(st.sampled_from(RAW_QUERIES))
        else:
            query = draw(mostly_present(query_fields) | one_hostile(route, url=True))
            extra = st.dictionaries(st.text(min_size=1, max_size=8), url_texts, max_size=1)
            query.update(draw(extra))
            if query:
                url += "?" + urllib.parse.urlencode(
                    {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()},
                    errors="surrogatepass",
                )
    return Probe(route.verb, url, [(k.encode(), v) for k, v in headers.items()], content)


# --- the property --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caller(stack: Stack) -> Caller:
    user = new_user_id()
    token = DEFAULT_KEY.mint(user, lifetime=3600)
    with stack.client() as http:
        headers = {"authorization": f"Bearer {token}"}
        http.post("/api/users/initialize", json={"email": "f@example.com"}, headers=headers)
        grant_purchased(stack, user, 40)
        task = http.post("/api/tasks/create", json={"type": "image_analysis"}, headers=headers)
    return Caller(user=user, token=token, task_id=task.json()["task"]["id"])


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as http:
        yield http


def assert_answer(probe: Probe, response: httpx.Response) -> None:
    shown = f"{probe!r} -> {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, shown
    if response.status_code >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), shown
        body = response.json()
        assert set(body) == {"error", "statusCode"}, shown
        assert body["statusCode"] == response.status_code, shown
        assert isinstance(body["error"], str), shown
        assert body["error"], shown
        assert len(body["error"]) <= 1024, shown


def verify_ledger(stack: Stack) -> None:
    with grpc.insecure_channel(stack.settings.credit_service_addr) as channel:
        report = credit_pb2_grpc.CreditInternalServiceStub(channel).VerifyLedger(
            credit_pb2.VerifyLedgerRequest(),
            metadata=(("x-internal-token", INTERNAL_TOKEN),),
            timeout=60,
        )
    assert list(report.differences) == []


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_route_answers_5xx_to_hostile_input(
    route: Route, caller: Caller, client: httpx.Client, stack: Stack
) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=timedelta(seconds=10),
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(probe=probes(route, caller))
    def property_holds(probe: Probe) -> None:
        request = client.build_request(
            probe.method, probe.url, headers=probe.headers, content=probe.content
        )
        response = client.send(request)
        event(f"HTTP {response.status_code}")  # pytest --hypothesis-show-statistics
        assert_answer(probe, response)

    property_holds()
    verify_ledger(stack)
