"""`edgebench upload FILE.csv --server URL`: validate locally, show, ask, send, retry.

FILE is a results CSV or a quality CSV (`edgebench quality`); its header decides which reader
checks it and which endpoint takes it (/api/results or /api/quality).

Rows hold no hostnames, user names or paths by design (the host fingerprint is a hash of the
hardware class, not of the machine's name); the client still scans every text cell for this
machine's hostname, user name and home folder and refuses to send a row that contains them
unless --include-host is given. Re-sending is safe because the server is idempotent on
(run_id, config_id, rep) and on the quality key, which is also why POST may be retried: on a
connection error, 429 (too many uploads at once), 502/503/504 (busy or restarting), and 409
when the server adds Retry-After (a concurrent upload of the same rows; a 409 without it is a
content conflict that no retry fixes). Waits double from backoff_s, and are at least what
Retry-After asks (capped at MAX_WAIT_S).
"""

from __future__ import annotations

import getpass
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TextIO
from urllib.parse import urlparse

from bench.errors import EdgebenchError

RETRY_STATUS = frozenset({429, 502, 503, 504})  # and 409 with Retry-After
RETRIES = 4
MAX_WAIT_S = 60.0
TOKEN_ENV = "EDGEBENCH_TOKEN"


@dataclass(frozen=True)
class UploadResult:
    run_ids: tuple[str, ...]
    rows: int
    stored: int
    duplicates: int
    report_url: str


def local_identifiers() -> tuple[str, ...]:
    """Strings that would identify this machine or its user if they leaked into a row."""
    found: list[str] = []
    host = socket.gethostname()
    for name in {host, host.split(".")[0]}:
        if len(name) >= 3 and name.lower() not in ("localhost", "localdomain"):
            found.append(name)
    home = str(Path.home())
    if len(home) > 3:
        found.append(home)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    if len(user) >= 2:
        found += [f"/home/{user}", f"/Users/{user}", f"\\Users\\{user}"]
    return tuple(found)


def privacy_findings(rows: Sequence, identifiers: Sequence[str],
                     columns: Sequence[str] | None = None) -> list[str]:
    """'line N column C contains X' for every text cell holding a local identifier; `columns`
    are the text columns to scan (default: the results schema's)."""
    if columns is None:
        from bench.results.validate import text_columns

        columns = text_columns()
    patterns = [(ident, re.compile(r"(?<![\w.-])" + re.escape(ident) + r"(?![\w-])",
                                   re.IGNORECASE)) for ident in identifiers]
    findings = []
    for line, row in enumerate(rows, start=2):
        for column in columns:
            value = getattr(row, column)
            if not value:
                continue
            for ident, pattern in patterns:
                if pattern.search(value):
                    findings.append(f"line {line} column {column} contains {ident!r}")
    return findings


def describe(rows: Sequence, path: Path, server: str, quality: bool = False) -> str:
    """What will be sent, in a few lines, before asking."""
    runs = sorted({r.run_id for r in rows})
    devices = sorted({r.cpu_model for r in rows})
    models = sorted({f"{r.model_id} ({r.variant})" for r in rows})
    lines = [
        f"About to upload {path.name} to {server}" + (" (quality rows)" if quality else "") + ":",
        f"  rows:    {len(rows)}",
        f"  runs:    {len(runs)} ({', '.join(runs[:5])}{', ...' if len(runs) > 5 else ''})",
        f"  device:  {'; '.join(devices)}",
        f"  models:  {', '.join(models)}",
    ]
    if quality:
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.measure] = counts.get(r.measure, 0) + 1
        lines.append(f"  measures: {', '.join(f'{m} ({n} rows)' for m, n in counts.items())}")
    lines.append("  Rows hold no hostname, user name or file path (checked); the host fingerprint "
                 "is a hash of the hardware class.")
    return "\n".join(lines)


def ask_consent(question: str, stdin: TextIO, stderr: TextIO) -> bool:
    stderr.write(f"{question} [y/N] ")
    stderr.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo else None


def post_with_retry(url: str, data: bytes, token: str, *, retries: int = RETRIES,
                    backoff_s: float = 1.0, timeout_s: float = 120.0,
                    sleep: Callable[[float], None] = time.sleep,
                    log: Callable[[str], None] = lambda msg: None):
    """POSTs the CSV; retries as the module docstring says."""
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv; charset=utf-8"}
    last = ""
    wait_s: float | None = None
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(retries + 1):
            if attempt:
                delay = max(backoff_s * 2 ** (attempt - 1), min(wait_s or 0.0, MAX_WAIT_S))
                log(f"{last}; retrying in {delay:g} s ({attempt}/{retries})")
                sleep(delay)
            try:
                response = client.post(url, content=data, headers=headers)
            except httpx.TransportError as exc:
                last, wait_s = f"cannot reach {url}: {exc.__class__.__name__}: {exc}", None
                continue
            wait_s = retry_after_s(response.headers.get("retry-after"))
            if response.status_code in RETRY_STATUS or (response.status_code == 409
                                                        and wait_s is not None):
                last = f"{url} answered {response.status_code}"
                continue
            return response
    raise EdgebenchError(f"{last} after {retries + 1} attempts; try again later (re-uploading "
                         "is safe: the server stores each row once)")


def _server_errors(response) -> str:
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        errors = []
    parts = []
    for err in errors[:3]:
        where = " ".join(p for p in (f"line {err.get('line')}" if err.get("line") else "",
                                     f"column {err.get('column')}" if err.get("column") else "")
                         if p)
        parts.append(f"{where}: {err.get('message')}" if where else str(err.get("message")))
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more if parts else response.text[:200]


def upload_file(path: Path, server: str, token: str | None, *, yes: bool = False,
                include_host: bool = False, stdin: TextIO | None = None,
                stdout: TextIO | None = None, stderr: TextIO | None = None,
                backoff_s: float = 1.0, identifiers: Sequence[str] | None = None) -> UploadResult:
    """The whole upload: local checks, summary, consent, send with retries. A quality CSV
    (told by its header) is checked by the quality reader and sent to /api/quality."""
    from bench.results.inputs import is_quality_file

    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parsed = urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise EdgebenchError(f"--server {server!r} is not an http(s) URL, e.g. "
                             "https://bench.example.org")
    base = server.rstrip("/")
    quality = path.is_file() and is_quality_file(path)
    rows, problems, columns = _read_checked(path, quality)
    if not rows:
        raise EdgebenchError(f"{path} holds no rows; nothing to upload")
    if problems:
        raise EdgebenchError(f"{path} {problems[0].one_line()}; fix or re-run before uploading "
                             f"({len(problems)} problem(s) found, nothing was sent)")
    if not include_host:
        findings = privacy_findings(rows, local_identifiers() if identifiers is None
                                    else identifiers, columns)
        if findings:
            raise EdgebenchError(f"{path} {findings[0]} (this machine's name, user or home "
                                 "folder); edit it out or pass --include-host to send it anyway")
    if not token:
        raise EdgebenchError(f"no upload token: pass --token or set {TOKEN_ENV} (the server "
                             "admin creates one with 'edgebench serve --create-token NAME')")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        stderr.write("edgebench: warning: plain http: the token and rows travel unencrypted\n")
    stdout.write(describe(rows, path, base, quality) + "\n")
    stdout.flush()
    if not yes:
        if not stdin.isatty():
            raise EdgebenchError("refusing to upload without consent: stdin is not a terminal; "
                                 "pass --yes to confirm sending these rows")
        if not ask_consent(f"Send {len(rows)} {'quality ' if quality else ''}rows to {base}?",
                           stdin, stderr):
            raise EdgebenchError("upload cancelled; nothing was sent")
    endpoint = "/api/quality" if quality else "/api/results"
    response = post_with_retry(f"{base}{endpoint}", path.read_bytes(), token,
                               backoff_s=backoff_s,
                               log=lambda msg: stderr.write(f"edgebench: {msg}\n"))
    if response.status_code not in (200, 201):
        raise EdgebenchError(f"the server rejected the upload ({response.status_code}): "
                             f"{_server_errors(response)}")
    body = response.json()
    result = UploadResult(run_ids=tuple(body["run_ids"]), rows=body["rows"],
                          stored=body["stored"], duplicates=body["duplicates"],
                          report_url=f"{base}/")
    stdout.write(f"stored {result.stored} of {result.rows} {'quality ' if quality else ''}rows"
                 + (f" ({result.duplicates} were already there)" if result.duplicates else "")
                 + f"; runs: {', '.join(result.run_ids)}\nreport: {result.report_url}\n")
    return result


def _read_checked(path: Path, quality: bool) -> tuple[list, list, tuple[str, ...]]:
    """(rows, problems, text columns to scan) by the reader and checks of the file's kind."""
    if quality:
        from bench.results.quality import read_quality_rows
        from bench.serve.quality import check_quality_rows, text_columns as quality_text

        rows: list = read_quality_rows(path)
        return rows, check_quality_rows(rows), quality_text()
    from bench.results.read import read_rows
    from bench.results.validate import check_rows, text_columns

    rows = read_rows(path)
    return rows, check_rows(rows), text_columns()
