"""The benchmark protocol: load, warm up, repeat, time every token, write each row as it finishes.

Definitions follow DESIGN.md: prefill_s is the forward pass over the prompt; TTFT adds the first
greedy selection; decode tok/s counts the 2nd+ tokens over the time from the first to the last
token (MLPerf Client); inter-token latencies are the gaps between consecutive tokens.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bench import __version__, stats
from bench.backends.base import Backend
from bench.errors import EdgebenchError, InterruptedRun
from bench.hardware import Fingerprint
from bench.modelzoo import ModelFolder
from bench.schema import SCHEMA_VERSION, ResultRow, ResultWriter


@dataclass(frozen=True)
class Shape:
    """One test: `pp512` (prompt only), `tg128` (generation after BOS), `pp512+tg128`, `chat`."""

    name: str
    n_prompt: int | None  # None: the chat prompt, whose length the tokenizer decides
    n_gen: int

    @staticmethod
    def pp(n: int) -> "Shape":
        return Shape(f"pp{n}", n, 1)  # one generated token so TTFT is measured too

    @staticmethod
    def tg(n: int) -> "Shape":
        return Shape(f"tg{n}", 1, n)

    @staticmethod
    def pg(p: int, g: int) -> "Shape":
        return Shape(f"pp{p}+tg{g}", p, g)

    @staticmethod
    def chat(n_gen: int) -> "Shape":
        return Shape("chat", None, n_gen)


@dataclass(frozen=True)
class Target:
    """A loaded-model point of the sweep: everything but the shape."""

    model: ModelFolder
    backend: str
    ep: str
    threads: int


@dataclass(frozen=True)
class RunPlan:
    targets: tuple[Target, ...]
    shapes: tuple[Shape, ...]
    reps: int = 5
    warmup: int = 1
    cooldown_s: float = 0.0
    interleave: bool = False
    chat_system: str = "You are a helpful assistant."
    chat_prompt: str = "Explain why the sky is blue."

    @property
    def total_runs(self) -> int:
        return len(self.targets) * len(self.shapes) * (self.reps + self.warmup)


@dataclass(frozen=True)
class Timing:
    """What one generation measured, in seconds from the moment the prompt was handed over."""

    prefill_s: float
    token_times_s: tuple[float, ...]  # time at which each generated token was available
    tokens: tuple[int, ...]
    edges: tuple[Any, ...] = ()  # energy readings: before prefill, after 1st token, after last

    @property
    def ttft_s(self) -> float:
        return self.token_times_s[0]

    def itl_s(self) -> list[float]:
        t = self.token_times_s
        return [b - a for a, b in zip(t, t[1:])]


def generate_timed(backend: Backend, prompt_ids: Sequence[int], n_gen: int,
                   stop_ids: frozenset[int] | None = None,
                   edge: Callable[[], Any] | None = None) -> Timing:
    """The timed region: prefill plus n_gen greedy tokens, nothing else inside.

    Benchmarks ignore EOS (stop_ids None, the backend masks it) like llama-bench; with
    stop_ids, generation ends after the first stop token, which is counted. `edge` (an energy
    meter's read) is called before the prefill, after the first token and after the last; the
    time it takes after the first token is taken out of the token timestamps.
    """
    backend.begin(len(prompt_ids) + n_gen, ignore_eos=stop_ids is None)
    clock = time.perf_counter
    edges = [edge()] if edge else []
    t0 = clock()
    backend.prefill(prompt_ids)
    t_prefill = clock()
    times, tokens = [], []
    paused = 0.0
    for i in range(n_gen):
        tokens.append(backend.next_token())
        times.append(clock() - paused)
        if i == 0 and edge:
            p0 = clock()
            edges.append(edge())
            paused += clock() - p0
        if stop_ids and tokens[-1] in stop_ids:
            break
    if edge:
        edges.append(edge())
    return Timing(t_prefill - t0, tuple(t - t0 for t in times), tuple(tokens), tuple(edges))


def make_backend(name: str) -> Backend:
    if name == "ort":
        from bench.backends.ort import OrtBackend
        return OrtBackend()
    if name == "ort-genai":
        try:
            from bench.backends.ort_genai import OrtGenaiBackend
            import onnxruntime_genai  # noqa: F401
        except ImportError:
            raise EdgebenchError("backend ort-genai needs onnxruntime-genai: pip install "
                                 "onnxruntime-genai, or use --backend ort") from None
        return OrtGenaiBackend()
    raise EdgebenchError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")


BACKENDS = ("ort-genai", "ort")


class PeakRss:
    """Peak resident memory of this process since the last reset.

    Linux lets a process reset its high-water mark (/proc/self/clear_refs, value 5), so each
    model's peak excludes earlier models; elsewhere the peak is the process lifetime's, and the
    row says so.
    """

    def __init__(self) -> None:
        self._clear = Path("/proc/self/clear_refs")
        self._status = Path("/proc/self/status")
        self.resettable = False

    def reset(self) -> None:
        try:
            self._clear.write_text("5")
            self.resettable = True
        except OSError:
            self.resettable = False

    def read_bytes(self) -> int:
        if self.resettable:
            for line in self._status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def config_id(target: Target, shape: Shape) -> str:
    return "/".join([target.model.model_id, target.model.variant, target.backend, target.ep,
                     f"t{target.threads}", shape.name])


@dataclass(frozen=True)
class EnergySetup:
    """The meter for this run and the idle baseline measured before the first test."""

    meter: Any  # bench.meters.Meter, started
    idle_power_w: float | None


@dataclass(frozen=True)
class EnergyFields:
    """The energy columns of one row (all None when nothing was metered)."""

    energy_method: str = "none"
    energy_scope: str | None = None
    sampling_interval_s: float | None = None
    idle_power_w: float | None = None
    prefill_energy_j: float | None = None
    prefill_energy_net_j: float | None = None
    decode_energy_j: float | None = None
    decode_energy_net_j: float | None = None
    prefill_j_per_tok: float | None = None
    decode_j_per_tok: float | None = None
    prefill_avg_power_w: float | None = None
    decode_avg_power_w: float | None = None
    energy_warning: str | None = None


def energy_fields(setup: EnergySetup | None, timing: Timing, n_prompt: int) -> EnergyFields:
    """Prefill window = TTFT (prefill + first selection), per prompt token; decode window =
    first to last token, per 2nd+ token, matching decode_tok_s."""
    if setup is None or len(timing.edges) != 3:
        return EnergyFields()
    from bench.energy import window_energy

    m = setup.meter
    r0, r1, r2 = timing.edges
    pre = window_energy(r0, r1, setup.idle_power_w, m.update_period_s, label="prefill",
                        method=m.method)
    n_decode = len(timing.tokens) - 1
    dec = window_energy(r1, r2, setup.idle_power_w, m.update_period_s, label="decode",
                        method=m.method) if n_decode > 0 else None
    warnings = [w for w in (pre.warning, dec.warning if dec else None) if w]
    return EnergyFields(
        energy_method=m.method, energy_scope=m.scope, sampling_interval_s=m.sampling_interval_s,
        idle_power_w=setup.idle_power_w,
        prefill_energy_j=pre.gross_j, prefill_energy_net_j=pre.net_j,
        decode_energy_j=dec.gross_j if dec else None,
        decode_energy_net_j=dec.net_j if dec else None,
        prefill_j_per_tok=pre.gross_j / n_prompt,
        decode_j_per_tok=dec.gross_j / n_decode if dec else None,
        prefill_avg_power_w=pre.avg_power_w, decode_avg_power_w=dec.avg_power_w if dec else None,
        energy_warning="; ".join(warnings) or None)


@dataclass
class _Loaded:
    backend: Backend
    load_s: float
    tokenizer: object | None = None
    chat_prompt_ids: list[int] = field(default_factory=list)


class Runner:
    """Runs a plan and streams rows to a writer; one instance per `edgebench run`."""

    def __init__(self, plan: RunPlan, fingerprint: Fingerprint, writer: ResultWriter | None,
                 *, git_commit: str | None = None, on_battery: bool | None = None,
                 progress: Callable[[str], None] | None = None,
                 advance: Callable[[], None] | None = None,
                 energy: EnergySetup | None = None,
                 thermals: Callable[[], Any] | None = None) -> None:
        self.plan = plan
        self.energy = energy
        self._thermals = thermals
        self.fp = fingerprint
        self.writer = writer
        self.git_commit = git_commit
        self.on_battery = on_battery
        self.run_id = uuid.uuid4().hex
        self.rows: list[ResultRow] = []
        self._progress = progress or (lambda msg: None)
        self._advance = advance or (lambda: None)
        self._peak = PeakRss()

    # -- model loading -------------------------------------------------------------------
    def _load(self, target: Target) -> _Loaded:
        from bench import prompts

        self._progress(f"loading {target.model.model_id}/{target.model.variant} "
                       f"on {target.backend} ({target.ep}, {target.threads} threads)")
        self._peak.reset()
        backend = make_backend(target.backend)
        t0 = time.perf_counter()
        backend.load(target.model.path, ep=target.ep, threads=target.threads)
        load_s = time.perf_counter() - t0
        loaded = _Loaded(backend, load_s)
        if any(s.n_prompt is None for s in self.plan.shapes):
            loaded.tokenizer = prompts.load_tokenizer(target.model.path)
        return loaded

    def _prompt(self, target: Target, loaded: _Loaded, shape: Shape) -> tuple[list[int], float | None]:
        from bench import prompts

        if shape.n_prompt is None:
            t0 = time.perf_counter()
            ids = prompts.chat_ids(target.model.path, loaded.tokenizer,
                                   self.plan.chat_system, self.plan.chat_prompt)
            return ids, time.perf_counter() - t0
        return prompts.synthetic_ids(shape.n_prompt, target.model.vocab_size,
                                     target.model.bos_token_id), None

    # -- the protocol --------------------------------------------------------------------
    def _measure(self, target: Target, loaded: _Loaded, shape: Shape, rep: int) -> ResultRow | None:
        prompt_ids, tokenize_s = self._prompt(target, loaded, shape)
        before = self._thermals() if self._thermals else None
        edge = self.energy.meter.read if self.energy else None
        started = _utc_now()
        timing = generate_timed(loaded.backend, prompt_ids, shape.n_gen, edge=edge)
        finished = _utc_now()
        after = self._thermals() if self._thermals else None
        peak = self._peak.read_bytes()
        self._advance()
        if self.plan.cooldown_s:
            time.sleep(self.plan.cooldown_s)
        if rep <= 0:  # warmup: measured, never written
            return None
        return self._row(target, loaded, shape, rep, prompt_ids, tokenize_s, timing,
                         started, finished, peak, before, after)

    def _row(self, target: Target, loaded: _Loaded, shape: Shape, rep: int,
             prompt_ids: list[int], tokenize_s: float | None, timing: Timing,
             started: str, finished: str, peak_bytes: int, before: Any, after: Any) -> ResultRow:
        n_gen = len(timing.tokens)
        itl = timing.itl_s()
        decode_s = timing.token_times_s[-1] - timing.token_times_s[0] if n_gen > 1 else None
        versions = loaded.backend.versions()
        warnings = []
        if not self._peak.resettable:
            warnings.append("peak_rss_bytes is the process-lifetime peak")
        elif self.plan.interleave and len(self.plan.targets) > 1:
            warnings.append("peak_rss_bytes includes the other models loaded for --interleave")
        return ResultRow(
            schema_version=SCHEMA_VERSION,
            run_id=self.run_id,
            test=shape.name,
            config_id=config_id(target, shape),
            rep=rep,
            source="edgebench run",
            started_utc=started,
            finished_utc=finished,
            edgebench_version=__version__,
            git_commit=self.git_commit,
            model_id=target.model.model_id,
            variant=target.model.variant,
            precision=target.model.precision,
            model_sha256=target.model.model_sha256,
            model_source_sha256=target.model.source_sha256,
            model_size_bytes=target.model.size_bytes,
            backend=target.backend,
            backend_version=versions.backend_version,
            onnxruntime_version=versions.onnxruntime_version,
            onnxruntime_genai_version=versions.onnxruntime_genai_version,
            ep=target.ep,
            ep_options=json.dumps(loaded.backend.ep_options(), sort_keys=True),
            threads=target.threads,
            n_prompt=len(prompt_ids),
            n_gen_requested=shape.n_gen,
            n_generated=n_gen,
            load_s=loaded.load_s,
            tokenize_s=tokenize_s,
            prefill_s=timing.prefill_s,
            prefill_tok_s=len(prompt_ids) / timing.prefill_s,
            ttft_s=timing.ttft_s,
            decode_s=decode_s,
            decode_tok_s=(n_gen - 1) / decode_s if decode_s else None,
            itl_p50_s=stats.percentile(itl, 50) if itl else None,
            itl_p90_s=stats.percentile(itl, 90) if itl else None,
            itl_p99_s=stats.percentile(itl, 99) if itl else None,
            itl_samples_s=" ".join(f"{x:.6g}" for x in itl) if itl else None,
            peak_rss_bytes=peak_bytes,
            on_battery=self.on_battery,
            cpu_freq_mhz_before=before.cpu_freq_mhz if before else None,
            cpu_freq_mhz_after=after.cpu_freq_mhz if after else None,
            cpu_temp_c_before=before.cpu_temp_c if before else None,
            cpu_temp_c_after=after.cpu_temp_c if after else None,
            **dataclasses.asdict(self.fp),
            **dataclasses.asdict(energy_fields(self.energy, timing, len(prompt_ids))),
            warnings="; ".join(warnings) or None,
        )

    def _emit(self, row: ResultRow | None) -> None:
        if row is None:
            return
        if self.writer is not None:
            self.writer.write(row)
        self.rows.append(row)

    def _schedule(self) -> Iterator[tuple[Target, Shape, int]]:
        """Warmups then repetitions; with interleave, repetition-major across every config
        (A B A B), which evens out the drift of shared hosts."""
        plan = self.plan
        reps = range(1 - plan.warmup, plan.reps + 1)  # rep <= 0 are warmups
        if plan.interleave:
            for rep in reps:
                for target, shape in itertools.product(plan.targets, plan.shapes):
                    yield target, shape, rep
        else:
            for target, shape in itertools.product(plan.targets, plan.shapes):
                for rep in reps:
                    yield target, shape, rep

    def run(self) -> list[ResultRow]:
        loaded: dict[Target, _Loaded] = {}
        try:
            for target, shape, rep in self._schedule():
                if target not in loaded:
                    if not self.plan.interleave:
                        for old in loaded.values():
                            old.backend.close()
                        loaded.clear()
                    loaded[target] = self._load(target)
                self._emit(self._measure(target, loaded[target], shape, rep))
        except KeyboardInterrupt:
            where = f" (kept in {self.writer.path})" if self.writer else ""
            raise InterruptedRun(f"interrupted: {len(self.rows)} finished repetitions kept"
                                 f"{where}; rerun to measure the rest") from None
        finally:
            for item in loaded.values():
                item.backend.close()
        return self.rows

