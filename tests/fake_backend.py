"""A scripted backend and a controllable clock, so the real timing loop and Runner can be tested
without a model: every step advances the clock by a known amount and emits known tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bench.models.folder import ModelFolder
from bench.run.backends.base import BackendVersions
from bench.run.hardware import Fingerprint


class FakeClock:
    """perf_counter stand-in: time moves only when something advances it."""

    def __init__(self, start_s: float = 100.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    sleep = advance  # the runner's cooldown sleeps on the same clock


@dataclass
class Script:
    """How long each step takes: prefill, then token i takes step_s[i] (last value repeats)."""

    prefill_s: float = 0.5
    step_s: Sequence[float] = (0.1,)
    load_s: float = 1.0
    tokens: Sequence[int] = (7,)  # emitted in turn, cycling


@dataclass
class Event:
    name: str
    backend: str
    detail: object = None


class ScriptedBackend:
    """Implements bench.run.backends.base.Backend over a FakeClock; logs every call."""

    def __init__(self, name: str, clock: FakeClock, script: Script, log: list[Event],
                 on_token: Callable[["ScriptedBackend", int], None] | None = None) -> None:
        self.name = name
        self.clock = clock
        self.script = script
        self.log = log
        self.on_token = on_token
        self.generation = 0
        self._i = 0

    def load(self, model_dir: Path, *, ep: str, threads: int) -> None:
        self.clock.advance(self.script.load_s)
        self.log.append(Event("load", self.name, (ep, threads)))

    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None:
        self.generation += 1
        self._i = 0
        self.log.append(Event("begin", self.name, max_length))

    def prefill(self, prompt_ids: Sequence[int]) -> None:
        self.clock.advance(self.script.prefill_s)
        self.log.append(Event("prefill", self.name, len(prompt_ids)))

    def next_token(self) -> int:
        steps = self.script.step_s
        self.clock.advance(steps[min(self._i, len(steps) - 1)])
        token = self.script.tokens[self._i % len(self.script.tokens)]
        self._i += 1
        if self.on_token:
            self.on_token(self, self._i)
        return token

    def close(self) -> None:
        self.log.append(Event("close", self.name))

    def versions(self) -> BackendVersions:
        return BackendVersions("fake-1.0", "1.0.0", None)

    def ep_options(self) -> dict[str, str]:
        return {"intra_op_num_threads": "1"}


@dataclass
class FakePeakRss:
    """PeakRss stand-in: `peaks` is what each load's high-water mark reads."""

    peaks: list[int] = field(default_factory=lambda: [100 * 2**20])
    resettable: bool = True
    resets: int = 0

    def reset(self) -> None:
        self.resets += 1

    def read_bytes(self) -> int:
        return self.peaks[min(self.resets, len(self.peaks)) - 1]


def fake_folder(tmp_path: Path, model_id: str = "fake-model", variant: str = "int4") -> ModelFolder:
    path = tmp_path / model_id / variant
    path.mkdir(parents=True, exist_ok=True)
    return ModelFolder(path=path, model_id=model_id, variant=variant, precision="int4-b32",
                       model_sha256="a" * 64, source_sha256="b" * 64, size_bytes=1234,
                       context_length=4096, vocab_size=1000, bos_token_id=1, eos_token_ids=(2,))


def fake_fingerprint() -> Fingerprint:
    return Fingerprint(host_fingerprint="f" * 16, cpu_model="Fake CPU", cpu_arch="x86_64",
                       cpu_cores_physical=2, cpu_cores_logical=4, ram_bytes=8 * 2**30,
                       os_name="Linux", os_release="6.1", python_version="3.11.7",
                       accelerators="none", available_eps="cpu")
