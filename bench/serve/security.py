"""Who may do what at the upload service, and the headers its pages carry.

Uploads need a token; reads need one too unless the server runs with --public-read. A token
arrives as `Authorization: Bearer <token>` (clients) or as the password of HTTP Basic auth
(a browser asks for it on the report page; any user name). Only the token's sha256 is stored,
and a revoked token is refused like an unknown one. HTML pages carry a Content-Security-Policy
that lets only the page's own inline scripts run (by their sha256), plus nosniff, no framing
and no referrer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, Sequence

from bench.results.validate import RowError

BEARER = "Bearer"
BASIC = 'Basic realm="edgebench", charset="UTF-8"'
_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.S | re.I)
BASE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store"}


class HttpProblem(Exception):
    """Turned into {"errors": [...]} with its status by the app's exception handler."""

    def __init__(self, status: int, errors: Sequence[RowError],
                 headers: dict[str, str] | None = None, error_count: int | None = None) -> None:
        super().__init__(errors[0].message if errors else str(status))
        self.status = status
        self.errors = list(errors)
        self.headers = headers or {}
        self.error_count = error_count if error_count is not None else len(errors)


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> HttpProblem:
    return HttpProblem(status, [RowError(None, None, message)], headers)


def token_from(header: str | None) -> str | None:
    """The token of a Bearer or Basic Authorization header; None when there is none."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def authorise(store: Any, header: str | None, *, writing: bool, public_read: bool = False,
              browser: bool = False) -> int | None:
    """The caller's token id (None for a public read), or an HttpProblem: 401 without a token,
    403 with one this server does not know or has revoked."""
    if not writing and public_read:
        return None
    token = token_from(header)
    if token is None:
        challenge = {"WWW-Authenticate": BASIC if browser else BEARER}
        if header:
            raise problem(401, "use 'Authorization: Bearer <token>'", challenge)
        if writing:
            raise problem(401, "an upload token is required: send 'Authorization: Bearer "
                               "<token>' (create one with 'edgebench serve --create-token NAME')",
                          challenge)
        raise problem(401, "reading needs a token on this server: send 'Authorization: Bearer "
                           "<token>' (or ask its admin to start it with --public-read)",
                      challenge)
    token_id = store.token_id(token)
    if token_id is None:
        raise problem(403, "this token is not valid on this server (unknown or revoked); ask "
                           "its admin for one")
    return token_id


def html_headers(page: str) -> dict[str, str]:
    """Headers for an HTML page: only its own inline scripts may run (hashed), nothing loads
    from elsewhere, no page may frame it."""
    hashes = sorted({base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
                     for body in _SCRIPT.findall(page) if body.strip()})
    scripts = " ".join(f"'sha256-{h}'" for h in hashes) or "'none'"
    policy = ("default-src 'none'; "
              f"script-src {scripts}; "
              "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return {**BASE_HEADERS, "Content-Security-Policy": policy, "X-Frame-Options": "DENY"}
