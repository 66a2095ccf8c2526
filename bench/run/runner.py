"""The benchmark protocol: load, warm up, repeat, time every token, write each row as it finishes.

What to run comes from a RunPlan (run/plan.py); the timed region is run/timing.py; each row is
built by run/rows.py. Backends come from the registry by name, or from `open_backend` (tests
pass a scripted backend and clock).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from bench.energy.windows import EnergySetup
from bench.errors import InterruptedRun
from bench.results.schema import ResultRow
from bench.results.writer import ResultWriter
from bench.run.backends import make_backend
from bench.run.backends.base import Backend
from bench.run.memory import PeakRss
from bench.run.plan import tokenizer_folder, RunPlan, Shape, Target
from bench.run.roofline import applies
from bench.run.rows import Measured, Provenance, build_row
from bench.run.timing import generate_timed


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Loaded:
    backend: Backend
    load_s: float
    tokenizer: object | None = None
    chat_template: object | None = None  # compiled at load: tokenize_s times render + encode


class Runner:
    """Runs a plan and streams rows to a writer; one instance per `edgebench run`."""

    def __init__(self, plan: RunPlan, fingerprint: Any, writer: ResultWriter | None,
                 *, git_commit: str | None = None, on_battery: bool | None = None,
                 progress: Callable[[str], None] | None = None,
                 advance: Callable[[], None] | None = None,
                 energy: EnergySetup | None = None,
                 thermals: Callable[[], Any] | None = None,
                 open_backend: Callable[[str], Backend] = make_backend,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep,
                 peak_rss: PeakRss | None = None,
                 bandwidth: Callable[[int], float | None] | None = None) -> None:
        self.plan = plan
        # measured read bandwidth (bytes/s) per thread count, for the roofline columns
        self._bandwidth = bandwidth
        self.energy = energy
        self._thermals = thermals
        self.writer = writer
        self.run_id = uuid.uuid4().hex
        self.provenance = Provenance(self.run_id, fingerprint, git_commit, on_battery)
        self.rows: list[ResultRow] = []
        self._progress = progress or (lambda msg: None)
        self._advance = advance or (lambda: None)
        self._open_backend = open_backend
        self._clock = clock
        self._sleep = sleep
        self._peak = peak_rss or PeakRss()

    # -- model loading -------------------------------------------------------------------
    def _load(self, target: Target) -> _Loaded:
        from bench.run import prompts

        self._progress(f"loading {target.model.model_id}/{target.model.variant} "
                       f"on {target.backend} ({target.ep}, {target.threads} threads)")
        backend = self._open_backend(target.backend)
        t0 = self._clock()
        # a Hugging Face folder holds one set of weights; the dtype is the variant's
        extra = ({"variant": target.model.variant}
                 if target.model.runtime == "hf" else {})
        backend.load(target.model.path, ep=target.ep, threads=target.threads, **extra)
        loaded = _Loaded(backend, self._clock() - t0)
        if any(s.n_prompt is None for s in self.plan.runs(target)):
            folder = tokenizer_folder(target.model)
            loaded.tokenizer = prompts.load_tokenizer(folder)
            loaded.chat_template = prompts.compile_chat(folder)
        return loaded

    def _prompt(self, target: Target, loaded: _Loaded, shape: Shape) -> tuple[list[int], float | None]:
        from bench.run import prompts

        if shape.n_prompt is None:
            t0 = self._clock()
            system, prompt = target.chat or (self.plan.chat_system, self.plan.chat_prompt)
            ids = prompts.chat_ids(loaded.chat_template, loaded.tokenizer, system, prompt)
            return ids, self._clock() - t0
        return prompts.synthetic_ids(shape.n_prompt, target.model.vocab_size,
                                     target.model.bos_token_id), None

    # -- the protocol --------------------------------------------------------------------
    def _measure(self, target: Target, loaded: _Loaded, shape: Shape, rep: int) -> ResultRow | None:
        prompt_ids, tokenize_s = self._prompt(target, loaded, shape)
        before = self._thermals() if self._thermals else None
        self._peak.reset()  # per test and repetition: a tg row must not inherit pp512's peak
        edge = self.energy.meter.read if self.energy else None
        started = utc_now()
        timing = generate_timed(loaded.backend, prompt_ids, shape.n_gen, edge=edge,
                                clock=self._clock)
        finished = utc_now()
        after = self._thermals() if self._thermals else None
        peak = self._peak.read_bytes()
        self._advance()
        if self.plan.cooldown_s:
            self._sleep(self.plan.cooldown_s)
        if rep <= 0:  # warmup: measured, never written
            return None
        measured = Measured(rep, tuple(prompt_ids), tokenize_s, timing, started, finished, peak,
                            loaded.load_s, before, after, self._warnings())
        return build_row(self.provenance, target, shape, loaded.backend, measured, self.energy,
                         self._bandwidth_for(target))

    def _bandwidth_for(self, target: Target) -> float | None:
        if self._bandwidth is None or not applies(target.ep):
            return None
        return self._bandwidth(target.threads)

    def _warnings(self) -> tuple[str, ...]:
        if not self._peak.resettable:
            return ("peak_rss_bytes is the process-lifetime peak",)
        if self.plan.interleave and len(self.plan.targets) > 1:
            return ("peak_rss_bytes includes the other models loaded for --interleave",)
        return ()

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
        pairs = [(t, s) for t in plan.targets for s in plan.runs(t)]
        if plan.interleave:
            for rep in reps:
                for target, shape in pairs:
                    yield target, shape, rep
        else:
            for target, shape in pairs:
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
