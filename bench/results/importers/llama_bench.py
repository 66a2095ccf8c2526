"""llama-bench output (CSV, JSON array, JSONL) as edgebench schema rows.

Only what llama-bench measured is carried over; what it does not record stays empty (None) or,
for required text fields, "unknown". The run id is a hash of the file content, so importing the
same file twice yields the same rows (and the upload service stores them once).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PureWindowsPath
from typing import Any

from bench import __version__
from bench.errors import EdgebenchError
from bench.results.schema import SCHEMA_VERSION, ResultRow

SOURCE = "llama-bench import"
UNKNOWN = "unknown"

# Fields every llama-bench version since 2024 prints and we cannot do without.
_NEEDED = ("build_commit", "build_number", "cpu_info", "model_filename", "model_type",
           "n_threads", "n_prompt", "n_gen", "test_time", "avg_ns", "avg_ts")
# Fields mapped to their own columns; every other field is test configuration -> ep_options.
_MAPPED = frozenset(_NEEDED) | {"gpu_info", "backends", "model_size", "model_n_params",
                                "stddev_ns", "stddev_ts", "samples_ns", "samples_ts"}
_QUANT_SUFFIX = {"Small": "S", "Medium": "M", "Large": "L"}


@dataclass(frozen=True)
class Record:
    """One llama-bench test result and where it was in the file (for error messages)."""

    where: str  # "line 3" or "record 2"
    fields: dict[str, Any]


@dataclass(frozen=True)
class ImportOutcome:
    written: int
    skipped: int  # already in the output file (same run_id, config_id, rep)


def import_llama_bench(path: Path) -> list[ResultRow]:
    """Rows for every test in a llama-bench output file; one line of error on bad input."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EdgebenchError(f"llama-bench output {path} does not exist") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EdgebenchError(f"{path.name} is not UTF-8 text; pass llama-bench -o csv, json "
                             "or jsonl output") from None
    kind, records = read_records(text, path.name)
    if not records:
        raise EdgebenchError(f"{path.name} holds no llama-bench results")
    run_id = hashlib.sha256(data).hexdigest()[:32]
    rows: list[ResultRow] = []
    used_ids: set[str] = set()
    for record in records:
        rows.extend(_rows_of(record, kind, path.name, run_id, used_ids))
    return rows


def read_records(text: str, name: str) -> tuple[str, list[Record]]:
    """Detects the format by content: '[' JSON, '{' JSONL, a build_commit header CSV."""
    head = text.lstrip()
    if head.startswith("["):
        return "JSON", _json_records(text, name)
    if head.startswith("{"):
        return "JSONL", _jsonl_records(text, name)
    first_line = head.split("\n", 1)[0]
    if "build_commit" in first_line and "," in first_line:
        return "CSV", _csv_records(text, name)
    if head.startswith("|") or head.upper().startswith("CREATE TABLE"):
        raise EdgebenchError(f"{name} is llama-bench markdown or SQL output, which holds rounded "
                             "values only; rerun llama-bench with -o json (or -o csv)")
    raise EdgebenchError(f"{name} is not llama-bench output (expected -o csv, json or jsonl)")


def _json_records(text: str, name: str) -> list[Record]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EdgebenchError(f"{name} line {exc.lineno}: not valid JSON ({exc.msg}); is the "
                             "file truncated?") from None
    if not isinstance(items, list):
        raise EdgebenchError(f"{name}: expected a JSON array of llama-bench results")
    records = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise EdgebenchError(f"{name} record {index}: not a JSON object")
        records.append(Record(f"record {index}", item))
    return records


def _jsonl_records(text: str, name: str) -> list[Record]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EdgebenchError(f"{name} line {lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise EdgebenchError(f"{name} line {lineno}: not a JSON object")
        records.append(Record(f"line {lineno}", item))
    return records


def _csv_records(text: str, name: str) -> list[Record]:
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise EdgebenchError(f"{name} is not valid CSV: {exc}") from None
    header = [h.strip() for h in table[0]]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:  # dict(zip()) would keep the last copy silently
        raise EdgebenchError(f"{name} line 1: column {repeated[0]!r} appears more than once; "
                             "export it again with llama-bench -o csv")
    records = []
    for lineno, cells in enumerate(table[1:], start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise EdgebenchError(f"{name} line {lineno}: {len(cells)} cells for {len(header)} "
                                 "columns (truncated or malformed)")
        records.append(Record(f"line {lineno}", dict(zip(header, cells))))
    return records


class _Fields:
    """Typed access to one record's fields with errors that name the file and record."""

    def __init__(self, record: Record, name: str) -> None:
        self.values = record.fields
        self.loc = f"{name} {record.where}"
        missing = [k for k in _NEEDED if k not in self.values]
        if missing:
            raise EdgebenchError(f"{self.loc}: field {missing[0]} is missing; is this "
                                 "llama-bench -o csv/json/jsonl output?")

    def text(self, key: str) -> str:
        value = self.values.get(key)
        return "" if value is None else str(value).strip()

    def integer(self, key: str) -> int:
        value = self.values.get(key)
        try:
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise EdgebenchError(f"{self.loc}: field {key} has {value!r}, expected a whole "
                                 "number") from None

    def number(self, key: str) -> float:
        value = self.values.get(key)
        try:
            if isinstance(value, bool):
                raise ValueError
            result = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise EdgebenchError(f"{self.loc}: field {key} has {value!r}, expected a "
                                 "number") from None
        if not result == result or result in (float("inf"), float("-inf")):
            raise EdgebenchError(f"{self.loc}: field {key} has {value!r}, not a finite number")
        return result

    def samples(self, key: str) -> list[float] | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise EdgebenchError(f"{self.loc}: field {key} is not a list")
        out = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise EdgebenchError(f"{self.loc}: field {key} holds {item!r}, not a number")
            out.append(float(item))
        return out


def llama_test_name(n_prompt: int, n_gen: int, n_depth: int) -> str:
    """As llama-bench names its tests: pp512, tg128, pp512+tg128, with ' @ d<N>' for depth."""
    if n_prompt > 0 and n_gen > 0:
        name = f"pp{n_prompt}+tg{n_gen}"
    elif n_prompt > 0:
        name = f"pp{n_prompt}"
    else:
        name = f"tg{n_gen}"
    return f"{name} @ d{n_depth}" if n_depth else name


def quant_of(model_type: str) -> str:
    """'llama 1B Q4_0' -> Q4_0, 'qwen2 1.5B Q4_K - Medium' -> Q4_K_M, 'x 1B all F32' -> F32."""
    parts = model_type.split(" ", 2)
    rest = parts[2].replace("(guessed)", "").strip() if len(parts) == 3 else ""
    if rest.startswith("all "):
        rest = rest[4:]
    match = re.match(r"([A-Za-z0-9_]+)(?: - (\w+))?", rest)
    if not match:
        return UNKNOWN
    quant, size = match.groups()
    return f"{quant}_{_QUANT_SUFFIX[size]}" if size in _QUANT_SUFFIX else quant


def model_id_of(model_filename: str) -> str:
    """The file name only (never the path, which names the user's folders), without .gguf."""
    base = PureWindowsPath(model_filename).name if "\\" in model_filename \
        else Path(model_filename).name
    return re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE) or UNKNOWN


def _ep_of(f: _Fields) -> str:
    backends = f.text("backends")
    if backends:
        return "+".join(b.strip().lower() for b in backends.split(",") if b.strip())
    return "gpu" if f.text("gpu_info") else "cpu"


def _options(f: _Fields) -> str:
    """Test configuration as JSON; CSV and JSON spellings normalised so both give one config."""
    def norm(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        return value
    return json.dumps({k: norm(v) for k, v in sorted(f.values.items()) if k not in _MAPPED},
                      sort_keys=True, separators=(",", ":"))


def _rows_of(record: Record, kind: str, name: str, run_id: str,
             used_ids: set[str]) -> list[ResultRow]:
    f = _Fields(record, name)
    n_prompt, n_gen = f.integer("n_prompt"), f.integer("n_gen")
    n_depth = f.integer("n_depth") if f.values.get("n_depth") not in (None, "") else 0
    if n_prompt < 0 or n_gen < 0 or n_prompt + n_gen == 0:
        raise EdgebenchError(f"{f.loc}: n_prompt {n_prompt} and n_gen {n_gen} describe no test")
    started = f.text("test_time")
    try:
        datetime.fromisoformat(started)
    except ValueError:
        raise EdgebenchError(f"{f.loc}: test_time {started!r} is not an RFC 3339 time") from None
    model_id, variant = model_id_of(f.text("model_filename")), quant_of(f.text("model_type"))
    ep, threads = _ep_of(f), f.integer("n_threads")
    test = llama_test_name(n_prompt, n_gen, n_depth)
    ep_options = _options(f)
    config_id = f"{model_id}/{variant}/llama.cpp/{ep}/t{threads}/{test}"
    if config_id in used_ids:  # same test with other settings (e.g. two -b values)
        config_id += "/" + hashlib.sha256(ep_options.encode()).hexdigest()[:8]
    base_id, k = config_id, 2
    while config_id in used_ids:  # the very same test twice (concatenated runs)
        config_id, k = f"{base_id}/{k}", k + 1
    used_ids.add(config_id)

    notes = [f"imported from llama-bench {kind} file {name}"]
    if n_prompt and n_gen:
        notes.append(f"llama-bench {test} t/s counts prompt and generated tokens over the total "
                     "time, so it is neither a prefill nor a decode rate (avg "
                     f"{f.number('avg_ts'):.2f} t/s)")
    elif n_gen:
        notes.append("llama-bench tg t/s is n_gen over all n_gen single-token decodes")
    samples_ns, samples_ts = f.samples("samples_ns"), f.samples("samples_ts")
    if samples_ns and samples_ts:
        if len(samples_ns) != len(samples_ts):
            raise EdgebenchError(f"{f.loc}: samples_ns and samples_ts differ in length")
        reps = list(zip(samples_ns, samples_ts))
    else:
        stddev = f.number("stddev_ts") if f.values.get("stddev_ts") not in (None, "") else None
        spread = f"stddev {stddev:.2f} t/s" if stddev is not None else "stddev not recorded"
        notes.append(f"llama-bench {kind} holds only the mean of N repetitions (N not recorded; "
                     f"{spread})")
        reps = [(f.number("avg_ns"), f.number("avg_ts"))]

    model_size = f.integer("model_size") if f.values.get("model_size") not in (None, "") else None
    rows = []
    for rep, (t_ns, tok_s) in enumerate(reps, start=1):
        seconds = t_ns / 1e9
        pp_only, tg_only = n_prompt > 0 and n_gen == 0, n_gen > 0 and n_prompt == 0
        rows.append(ResultRow(
            schema_version=SCHEMA_VERSION, run_id=run_id, test=test, config_id=config_id,
            rep=rep, source=SOURCE, started_utc=started, finished_utc=started,
            edgebench_version=__version__, git_commit=None, model_id=model_id, variant=variant,
            precision=f.text("model_type") or UNKNOWN, model_sha256=None,
            model_source_sha256=None, model_size_bytes=model_size, backend="llama.cpp",
            backend_version=f"{f.text('build_commit')} ({f.text('build_number')})",
            onnxruntime_version=None, onnxruntime_genai_version=None, ep=ep,
            ep_options=ep_options, threads=threads, n_prompt=n_prompt, n_gen_requested=n_gen,
            n_generated=n_gen, load_s=None, tokenize_s=None,
            prefill_s=seconds if pp_only else None, prefill_tok_s=tok_s if pp_only else None,
            ttft_s=None, decode_s=seconds if tg_only else None,
            decode_tok_s=tok_s if tg_only else None, itl_p50_s=None, itl_p90_s=None,
            itl_p99_s=None, itl_samples_s=None, peak_rss_bytes=None, host_fingerprint=UNKNOWN,
            cpu_model=f.text("cpu_info") or UNKNOWN, cpu_arch=UNKNOWN, cpu_cores_physical=None,
            cpu_cores_logical=None, ram_bytes=None, os_name=UNKNOWN, os_release=None,
            python_version=None, accelerators=f.text("gpu_info") or UNKNOWN,
            available_eps=None, on_battery=None, energy_method="none", energy_scope=None,
            sampling_interval_s=None, idle_power_w=None, prefill_energy_j=None,
            prefill_energy_net_j=None, decode_energy_j=None, decode_energy_net_j=None,
            prefill_j_per_tok=None, decode_j_per_tok=None, prefill_avg_power_w=None,
            decode_avg_power_w=None, energy_warning=None, cpu_freq_mhz_before=None,
            cpu_freq_mhz_after=None, cpu_temp_c_before=None, cpu_temp_c_after=None,
            warnings="; ".join(notes),
        ))
    return rows


def write_import(source: Path, output: Path) -> ImportOutcome:
    """Appends the imported rows to OUTPUT, skipping rows it already holds (re-import is a no-op)."""
    from bench.results.writer import ResultWriter
    from bench.results.read import iter_rows

    rows = import_llama_bench(source)
    known: set[tuple[str, str, int]] = set()
    if output.exists() and output.stat().st_size > 0:
        known = {(r.run_id, r.config_id, r.rep) for r in iter_rows(output)}
    fresh = [r for r in rows if (r.run_id, r.config_id, r.rep) not in known]
    with ResultWriter(output) as writer:
        for row in fresh:
            writer.write(row)
    return ImportOutcome(written=len(fresh), skipped=len(rows) - len(fresh))
