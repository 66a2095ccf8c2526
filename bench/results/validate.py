"""What a well-typed result row may still get wrong: plausibility limits, text cells a
spreadsheet or parser would trip on, and fields that contradict each other.

The schema (bench/results/schema.py) decides what is well-typed; the upload service checks an
upload cell by cell with it as a stream (bench/serve/checks.py), then row by row with
`row_errors`; the upload client runs `check_rows` on the file before sending anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from bench.results import schema
from bench.results.schema import COLUMNS, SCHEMA_VERSION, ResultRow

MAX_REPORTED_ERRORS = 50  # an answer lists this many problems, then counts the rest
FUTURE_SKEW = timedelta(minutes=10)  # a device clock this far ahead is still believed
RATE_REL_TOL = 0.05  # a rate and its own tokens / seconds agree at least this well
MAX_JSON_DEPTH = 8  # ep_options is a flat object of settings; deeper is not ours
MAX_JSON_CHARS = 65_536
# C0 control characters but tab and newline, and DEL: edgebench writes none; a bare CR splits
# a row in many readers and hides what follows it from the formula check.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ENERGY_VALUES = ("sampling_interval_s", "idle_power_w", "prefill_energy_j", "prefill_energy_net_j",
                 "decode_energy_j", "decode_energy_net_j", "prefill_j_per_tok",
                 "decode_j_per_tok", "prefill_avg_power_w", "decode_avg_power_w")
ESTIMATE_ONLY = ("prefill_j_per_tok_low", "prefill_j_per_tok_high", "decode_j_per_tok_low",
                 "decode_j_per_tok_high", "energy_basis")


@dataclass(frozen=True)
class Limit:
    """Plausible range of a numeric column: matched by exact name, else by the longest unit
    suffix (ignoring a trailing _before/_after, as in cpu_temp_c_before)."""

    match: str
    low: float
    high: float
    why: str


# Anything outside these ranges is a unit slip or a broken clock, not a measurement. They are
# deliberately wide: the point is to stop 1e9 tok/s or negative seconds from reaching reports.
LIMITS: tuple[Limit, ...] = (
    Limit("_tok_s", 0, 1e6, "no edge device processes a million tokens/s; more is a unit slip"),
    Limit("_s", 0, 1e6, "one test taking more than ~11 days is a clock error"),
    Limit("_bytes", 0, 1e15, "a petabyte of model or RAM on one device is a unit slip"),
    Limit("_j_per_tok", 0, 1e6, "a megajoule per token is a unit slip"),
    Limit("_j", 0, 1e9, "a gigajoule for one test is a unit slip"),
    Limit("_w", 0, 1e5, "100 kW is a data-centre rack, not a device under test"),
    Limit("_mhz", 0, 1e5, "no CPU clocks at 100 GHz"),
    Limit("_c", -90, 150, "silicon does not operate outside this temperature range"),
    Limit("rep", 1, 1e6, "repetitions are 1-based"),
    Limit("threads", 1, 1e5, "at least one thread ran the test"),
    Limit("cpu_cores_logical", 1, 1e5, "a device has at least one core"),
    Limit("cpu_cores_physical", 0, 1e5, "0 means unknown"),
    Limit("n_prompt", 0, 1e8, "token counts are non-negative and far below 1e8"),
    Limit("n_gen_requested", 0, 1e8, "token counts are non-negative and far below 1e8"),
    Limit("n_generated", 0, 1e8, "token counts are non-negative and far below 1e8"),
    Limit("schema_version", SCHEMA_VERSION, SCHEMA_VERSION, "checked by the schema reader"),
    Limit("bytes_per_token", 1, 1e15, "a decode step reads at least one byte, never a petabyte"),
    Limit("mem_bandwidth_bytes_s", 1e6, 1e14, "read bandwidth between 1 MB/s and 100 TB/s; "
                                              "outside that it is a unit slip"),
    # Above 1 the weights were partly served from cache (a small model, a big last-level cache);
    # far above, bytes_per_token or the bandwidth is wrong (bits for bytes is 8x).
    Limit("decode_roofline_frac", 0, 5, "decode cannot run 5x faster than memory can be read"),
)

_NUMERIC_KINDS = ("int", "float")


@cache
def numeric_columns() -> tuple[str, ...]:
    return tuple(c for c in COLUMNS if schema.TYPES[c].split()[0] in _NUMERIC_KINDS)


@cache
def text_columns() -> tuple[str, ...]:
    return tuple(c for c in COLUMNS if schema.TYPES[c].split()[0] == "str")


@cache
def numeric_limits() -> tuple[tuple[str, Limit], ...]:
    """(column, limit) of every numeric column; a column without one is unbounded."""
    unbounded = Limit("", -math.inf, math.inf, "")
    return tuple((c, limit_for(c) or unbounded) for c in numeric_columns())


@cache
def limit_for(column: str) -> Limit | None:
    exact = [lim for lim in LIMITS if lim.match == column]
    if exact:
        return exact[0]
    unit = re.sub(r"_(before|after|low|high)$", "", column)
    suffixes = [lim for lim in LIMITS if lim.match.startswith("_") and unit.endswith(lim.match)]
    return max(suffixes, key=lambda lim: len(lim.match)) if suffixes else None


@dataclass(frozen=True)
class RowError:
    """One problem, located as precisely as we can: CSV record line (header is 1) and column."""

    line: int | None
    column: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}

    def one_line(self) -> str:
        where = " ".join(p for p in (f"line {self.line}" if self.line else "",
                                     f"column {self.column}" if self.column else "") if p)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class Checked:
    """Outcome of a check: the rows when valid, else the errors and the HTTP status that fits."""

    rows: Sequence[Any]  # ResultRows (a tuple, or a serve.batch.ResultBatch), or QualityRows
    errors: tuple[RowError, ...]
    status: int  # 200 valid, 400 not UTF-8, 413 too many rows, 422 invalid content
    error_count: int = 0


def row_errors(row: ResultRow, line: int, now: datetime | None = None) -> list[RowError]:
    """Everything wrong with one schema-valid row but control characters (control_errors;
    the upload service finds those in the raw record); `now` (UTC) bounds its timestamps."""
    errors: list[RowError] = []
    for column, lim in numeric_limits():
        value = getattr(row, column)
        if value is None or lim.low <= value <= lim.high:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(RowError(line, column, f"{value} is not a finite number"))
        else:
            errors.append(RowError(line, column, f"{value!r} is outside the plausible range "
                                                 f"[{lim.low:g}, {lim.high:g}] ({lim.why})"))
    errors += _text_errors(row, line)
    errors += timestamp_errors(row.started_utc, row.finished_utc, line, now)
    if not errors:  # contradictions only mean something between plausible values
        errors += consistency_errors(row, line)
    return errors


def plausibility_errors(rows: Sequence[ResultRow], first_line: int = 2,
                        now: datetime | None = None) -> list[RowError]:
    """row_errors and control_errors of every row, the first at CSV line `first_line`."""
    return [e for offset, row in enumerate(rows) for line in (first_line + offset,)
            for e in control_errors(row, text_columns(), line) + row_errors(row, line, now)]


def control_errors(row: Any, columns: Sequence[str], line: int) -> list[RowError]:
    values = [getattr(row, c) for c in columns]
    if not CONTROL_CHARS.search("".join(v for v in values if isinstance(v, str))):
        return []
    errors = []
    for column in columns:
        value = getattr(row, column)
        found = CONTROL_CHARS.search(value) if isinstance(value, str) else None
        if found:
            errors.append(RowError(line, column, control_message(found.group())))
    return errors


def control_message(char: str) -> str:
    what = "a carriage return (\\r)" if char == "\r" else f"control character U+{ord(char):04X}"
    return f"contains {what}; edgebench writes none (tab and newline are the only ones allowed)"


def parse_utc(text: str) -> datetime:
    """RFC 3339 as edgebench writes it (trailing Z); a time without offset is taken as UTC."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def timestamp_errors(started: str, finished: str, line: int,
                     now: datetime | None = None) -> list[RowError]:
    """Both RFC 3339, the finish not before the start, neither in the future."""
    errors, parsed = [], {}
    for column, text in (("started_utc", started), ("finished_utc", finished)):
        try:
            parsed[column] = parse_utc(text)
        except ValueError:
            errors.append(RowError(line, column, f"{text!r} is not an RFC 3339 timestamp"))
    if errors:
        return errors
    latest = (now or datetime.now(timezone.utc)) + FUTURE_SKEW
    for column, value in parsed.items():
        if value > latest:
            errors.append(RowError(line, column, f"{value.isoformat()} is in the future (the "
                                                 "device clock is wrong; fix it and re-run)"))
    if parsed["finished_utc"] < parsed["started_utc"]:
        errors.append(RowError(line, "finished_utc", "is before started_utc"))
    return errors


def json_object_error(text: str) -> str | None:
    """Why `text` is not a small JSON object, or None; never recurses deeply (a RecursionError
    in json.loads would be a 500)."""
    if len(text) > MAX_JSON_CHARS:
        return f"is longer than {MAX_JSON_CHARS} characters"
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _json_depth(text) > MAX_JSON_DEPTH:
        return f"is nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "is not valid JSON"
    return None if isinstance(value, dict) else "is not a JSON object"


def _json_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _text_errors(row: ResultRow, line: int) -> list[RowError]:
    errors: list[RowError] = []
    if row.weights is not None and row.weights not in ("real", "synthetic"):
        errors.append(RowError(line, "weights", f"{row.weights!r} is neither real nor synthetic"))
    problem = json_object_error(row.ep_options)
    if problem:
        errors.append(RowError(line, "ep_options", problem))
    if row.itl_samples_s:
        try:  # map and min/max/sum in C: a row holds a hundred samples or more
            samples = list(map(float, row.itl_samples_s.split()))
            ok = (not samples or (min(samples) >= 0 and max(samples) <= 1e6
                                  and math.isfinite(sum(samples))))
        except ValueError:
            ok = False
        if not ok:
            errors.append(RowError(line, "itl_samples_s", "must be space-separated non-negative "
                                                          "seconds"))
    return errors


def consistency_errors(row: ResultRow, line: int) -> list[RowError]:
    """Fields that contradict each other: a rate its own tokens and seconds do not give, more
    tokens than asked for, percentiles out of order, energy columns the method cannot have."""
    errors: list[RowError] = []
    # prefill: n_prompt / prefill_s; decode: the runner counts the 2nd+ tokens over the decode
    # window, llama-bench all of them, so anything between the two is consistent
    for rate, seconds, low, high, tokens in (
            ("prefill_tok_s", "prefill_s", row.n_prompt, row.n_prompt, "n_prompt"),
            ("decode_tok_s", "decode_s", row.n_generated - 1, row.n_generated, "n_generated")):
        value, span = getattr(row, rate), getattr(row, seconds)
        if value is None:
            continue
        if not span:
            errors.append(RowError(line, rate, f"is given without {seconds}; a rate needs the "
                                               "time it was measured over"))
        elif not low / span * (1 - RATE_REL_TOL) <= value <= high / span * (1 + RATE_REL_TOL):
            errors.append(RowError(line, rate, f"{value!r} does not follow from {tokens} "
                                               f"{getattr(row, tokens)} over {seconds} {span!r} "
                                               f"(expected {low / span:.4g} to {high / span:.4g})"))
    if row.n_generated > row.n_gen_requested:
        errors.append(RowError(line, "n_generated", f"{row.n_generated} is more than "
                                                    f"n_gen_requested {row.n_gen_requested}"))
    for a, b in (("itl_p50_s", "itl_p90_s"), ("itl_p90_s", "itl_p99_s")):
        lo, hi = getattr(row, a), getattr(row, b)
        if lo is not None and hi is not None and lo > hi:
            errors.append(RowError(line, a, f"{lo!r} is above {b} {hi!r}"))
    return errors + _energy_errors(row, line)


def _energy_errors(row: ResultRow, line: int) -> list[RowError]:
    method = row.energy_method
    estimate = method.startswith("estimate")
    if method == "none":
        return [RowError(line, c, f"is {getattr(row, c)!r} but energy_method none measured "
                                  "nothing") for c in ENERGY_VALUES + ESTIMATE_ONLY
                if getattr(row, c) is not None]
    errors: list[RowError] = []
    if not estimate:
        errors += [RowError(line, c, f"is set, but only an estimate has bounds and a basis "
                                     f"(energy_method {method} measured)")
                   for c in ESTIMATE_ONLY if getattr(row, c) is not None]
        if row.energy_warning and "estimate" in row.energy_warning.lower():
            errors.append(RowError(line, "energy_warning", f"speaks of an estimate, but "
                                                           f"energy_method {method} measured"))
    for phase, tokens in (("prefill", row.n_prompt), ("decode", row.n_generated - 1)):
        per_tok = getattr(row, f"{phase}_j_per_tok")
        low, high = getattr(row, f"{phase}_j_per_tok_low"), getattr(row, f"{phase}_j_per_tok_high")
        if per_tok is not None and low is not None and high is not None and not (
                low * (1 - 1e-6) <= per_tok <= high * (1 + 1e-6)):
            errors.append(RowError(line, f"{phase}_j_per_tok", f"{per_tok!r} is outside the "
                                   f"estimate's bounds [{low!r}, {high!r}]"))
        gross, net = getattr(row, f"{phase}_energy_j"), getattr(row, f"{phase}_energy_net_j")
        if per_tok is not None and gross is not None and tokens > 0 and not math.isclose(
                per_tok, gross / tokens, rel_tol=1e-3, abs_tol=1e-12):
            errors.append(RowError(line, f"{phase}_j_per_tok", f"{per_tok!r} is not "
                                   f"{phase}_energy_j / tokens = {gross / tokens:.6g}"))
        if gross is not None and net is not None and net > gross + 1e-9 * abs(gross):
            errors.append(RowError(line, f"{phase}_energy_net_j", f"{net!r} is more than the "
                                                                  f"gross {gross!r}"))
    return errors


def duplicate_key_errors(rows: Sequence[ResultRow], first_line: int = 2) -> list[RowError]:
    """(run_id, config_id, rep) identifies a row; two rows with the same key cannot both be true."""
    seen: dict[tuple[str, str, int], int] = {}
    errors: list[RowError] = []
    for offset, row in enumerate(rows):
        key = (row.run_id, row.config_id, row.rep)
        line = first_line + offset
        if key in seen:
            errors.append(RowError(line, "rep", f"duplicates line {seen[key]} (same run_id, "
                                                "config_id and rep)"))
        else:
            seen[key] = line
    return errors


def failed(status: int, errors: list[RowError], error_count: int | None = None) -> Checked:
    """The first errors in line order, their count, and no rows: all or nothing."""
    errors.sort(key=lambda e: (e.line or 0))
    return Checked(rows=(), errors=tuple(errors[:MAX_REPORTED_ERRORS]), status=status,
                   error_count=len(errors) if error_count is None else error_count)


def check_rows(rows: Iterable[ResultRow], now: datetime | None = None) -> list[RowError]:
    """Plausibility and duplicate keys for rows read locally (the upload client's pre-flight)."""
    listed = list(rows)
    return plausibility_errors(listed, now=now) + duplicate_key_errors(listed)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(row: ResultRow) -> ResultRow:
    """Prefixes text cells a spreadsheet would evaluate with a quote; numbers are left alone."""
    changes = {c: "'" + v for c in text_columns()
               if isinstance(v := getattr(row, c), str) and v.startswith(_FORMULA_START)}
    return dataclasses.replace(row, **changes) if changes else row
