"""Malformed and hostile Slack requests, shared by the local server's and the Functions route's tests.

Each case is a raw body, its headers and the status the endpoint must answer. Signed cases are
signed with Slack's algorithm over the exact bytes (``sign_bytes``), so they pass the signature
check and exercise what comes after it; unsigned ones must be 401 whatever the body.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MARKER = "HOSTILE-MARKER-7f3a"


def sign_bytes(secret: str, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
    """Slack's signature headers for raw ``body`` (``v0=hmac_sha256(secret, b"v0:ts:" + body)``)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": f"v0={digest}"}


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    headers: dict[str, str]
    status: int

    @property
    def over_http(self) -> bool:
        """Whether HTTP can carry the headers as they are (not non-Latin-1, not padded: a server strips that)."""
        return all(v == v.strip() and all(ord(c) < 256 for c in v) for v in self.headers.values())


def cases(secret: str, *, age: int = 0, now: int | None = None) -> list[Case]:
    """Every malformed request of issue 12, unsigned and (where it gets past the signature) signed at
    ``now - age`` (``now``: the current time unless given).

    No two signed cases share a body, and another ``age`` from the same ``now`` (seconds, inside the
    window) makes another list's signatures differ from this one's: the replay cache would refuse a
    signature seen before with 401, before the check a case is about. (Two lists each signed at the
    current time minus their age can share a timestamp when a second passes between them.)"""
    now = int(time.time()) if now is None else now

    def signed(body: bytes, ctype: str | None = FORM) -> dict[str, str]:
        headers = sign_bytes(secret, body, now - age)
        if ctype is not None:
            headers["content-type"] = ctype
        return headers

    def form(text: str) -> bytes:
        return text.encode()

    forged_lines = f"payload=%7B%22x%22%3A1%7D%0A{MARKER}%0AINFO+fake+log+line".encode()
    out = [
        Case("unsigned JSON []", b"[]", {"content-type": JSON}, 401),
        Case("unsigned JSON null", b"null", {"content-type": JSON}, 401),
        Case("unsigned JSON 1", b"1", {"content-type": JSON}, 401),
        Case("unsigned payload=1", b"payload=1", {"content-type": FORM}, 401),
        Case("unsigned payload=null", b"payload=null", {"content-type": FORM}, 401),
        Case("unsigned empty body", b"", {"content-type": FORM}, 401),
        Case("unsigned, no content type", b"payload=1", {}, 401),
        Case("unsigned invalid UTF-8", b"payload=\xff\xfe\xfd", {"content-type": FORM}, 401),
        Case("forged body with newlines", forged_lines, {"content-type": FORM, **sign_bytes("guess", forged_lines)},
             401),
        Case("signature over another body", b"[ ] ", signed(b"[ ]", JSON), 401),
    ]
    for raw, ctype in ((b"[]", JSON), (b"null", JSON), (b"1", JSON), (b'{"type": "event_callback"}', JSON)):
        out.append(Case(f"signed JSON {raw.decode()}", raw, signed(raw, ctype), 400))
    for text in ("payload=1", "payload=null", "payload=%5B%5D", "payload=%7B%7D", "payload=%7B%22type%22%3A1%7D",
                 "payload=" + quote(json.dumps({"type": "block_actions", "user": [], "actions": [{}]})),
                 "payload=" + quote(json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": "x"})),
                 "payload=not-json", "payload=1&payload=2", "command=%2Fremediate", "nothing=here"):
        out.append(Case(f"signed form {text[:40]}", form(text), signed(form(text)), 400))
    empty, utf8, plain, bare = b"n=1", b"payload=\xff\xfe", b"payload=2", b"payload=3"
    out += [
        Case("signed empty body", b"", signed(b""), 400),
        Case("signed, form without a known field", empty, signed(empty), 400),
        Case("signed invalid UTF-8", utf8, signed(utf8), 400),
        Case("signed text/plain", plain, signed(plain, "text/plain"), 400),
        Case("signed, no content type", bare, signed(bare, None), 400),
    ]
    body = b"payload=4"
    good = sign_bytes(secret, body, now - age)
    for name, ts in (("non-numeric timestamp", "abc"), ("exponent timestamp", "1e9"), ("spaced timestamp", f" {now}"),
                     ("non-ASCII digits", "".join(chr(0x0660 + int(d)) for d in str(now))),
                     ("negative timestamp", "-1"), ("huge timestamp", "9" * 40), ("empty timestamp", ""),
                     ("stale timestamp", str(now - 301)), ("future timestamp", str(now + 301))):
        out.append(Case(name, body, {"content-type": FORM, "x-slack-request-timestamp": ts,
                                     "x-slack-signature": good["x-slack-signature"]}, 401))
    out += [
        Case("missing timestamp", body, {"content-type": FORM, "x-slack-signature": good["x-slack-signature"]}, 401),
        Case("missing signature", body, {"content-type": FORM, "x-slack-request-timestamp": str(now)}, 401),
        Case("non-ASCII signature", body, {"content-type": FORM, "x-slack-request-timestamp": str(now),
                                           "x-slack-signature": "v0=" + "é" * 64}, 401),
        Case("v1 signature", body, {**good, "content-type": FORM,
                                    "x-slack-signature": "v1=" + good["x-slack-signature"][3:]}, 401),
        Case("upper-case signature", body, {**good, "content-type": FORM,
                                            "x-slack-signature": good["x-slack-signature"].upper()}, 401),
        Case("huge body", b"payload=" + b"x" * (1024 * 1024), {"content-type": FORM}, 413),
    ]
    return out


def wsgi_call(app: Callable[..., Iterable[bytes]], method: str, path: str, body: bytes = b"",
              headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Call a WSGI app in-process the way waitress does: (status, headers, body)."""
    path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body)),
    }
    for key, value in (headers or {}).items():
        name = key.upper().replace("-", "_")
        environ[name if name == "CONTENT_TYPE" else f"HTTP_{name}"] = value
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = {k.lower(): v for k, v in response_headers}

    data = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], data
