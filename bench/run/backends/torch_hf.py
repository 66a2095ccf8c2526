"""transformers in eager mode on the recipe's Hugging Face folder: the unoptimised baseline on a
CPU, and the runtime that runs on an NVIDIA GPU (`--ep cuda`).

One forward pass per step with transformers' DynamicCache (KV cache on), eager attention, no
compilation, greedy argmax: what a user gets from `AutoModelForCausalLM` without tuning. The
dtype is the model record's variant (fp32 or bf16). On CUDA every step ends with
torch.cuda.synchronize(), so the runner's timestamp is taken after the GPU finished, not when
the kernels were queued.
"""

from __future__ import annotations

import inspect
import platform
from pathlib import Path
from typing import Any, Sequence

from bench.errors import EdgebenchError
from bench.run.backends.base import BackendVersions

DEVICES = {"cpu": "cpu", "cuda": "cuda:0"}  # edgebench EP names -> torch devices
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}  # model variant -> torch dtype name
ATTN_IMPLEMENTATION = "eager"
# /proc/cpuinfo flags of native bf16 arithmetic: x86 (AVX512-BF16, AMX) and Arm (FEAT_BF16)
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cpu_bf16_native(cpuinfo: list[dict[str, str]] | None = None) -> bool | None:
    """Whether the CPU computes bf16 natively (from /proc/cpuinfo's flags or Features); None
    where there is no cpuinfo to read (macOS, Windows): then bf16 is allowed and labelled."""
    if cpuinfo is None:
        from bench.machine.facts import Machine

        cpuinfo = Machine.from_env().cpuinfo()
    flags: set[str] = set()
    for block in cpuinfo:
        flags.update(block.get("flags", "").split())
        flags.update(block.get("Features", "").split())
    if not flags:
        return None
    return bool(flags & _BF16_FLAGS)


def torch_device(ep: str, torch: Any) -> str:
    """The torch device for an edgebench EP, or one line saying why it cannot be used."""
    if ep not in DEVICES:
        raise EdgebenchError(f"the torch backend runs on --ep cpu or --ep cuda, not {ep!r}")
    if ep == "cuda" and not torch.cuda.is_available():
        build = (f"built for CUDA {torch.version.cuda}" if getattr(torch.version, "cuda", None)
                 else "a CPU-only build")
        raise EdgebenchError(f"torch sees no CUDA device (torch {torch.__version__}, {build}); "
                             "use --ep cpu, or install a CUDA build of torch on a machine with an "
                             "NVIDIA GPU and driver")
    return DEVICES[ep]


def check_bf16(device: str, torch: Any, native: bool | None) -> str:
    """'native' or 'unknown' where bf16 may run; one line where it would not run natively."""
    if device.startswith("cuda"):
        if not torch.cuda.is_bf16_supported():
            raise EdgebenchError(f"{torch.cuda.get_device_name(0)} has no native bf16; use the "
                                 "fp32 variant")
        return "native"
    if native is False:
        raise EdgebenchError(f"this CPU ({platform.machine()}) has no native bf16 (no avx512_bf16, "
                             "amx_bf16 or bf16 flag in /proc/cpuinfo), so torch would emulate it; "
                             "use the fp32 variant")
    return "native" if native else "unknown"


class TorchBackend:
    name = "torch"
    runtimes = ("hf",)

    def __init__(self) -> None:
        self._torch: Any = None
        self._model: Any = None
        self._cache: Any = None
        self._ep, self._device, self._threads = "cpu", "cpu", 0
        self._variant = "fp32"
        self._bf16 = ""
        self._gpu_name: str | None = None

    def load(self, model_dir: Path, *, ep: str, threads: int, variant: str = "fp32") -> None:
        """`variant` is the model record's ("fp32" or "bf16"): the dtype of the weights."""
        import torch

        self._torch = torch
        if variant not in DTYPES:
            raise EdgebenchError(f"the torch backend runs variant fp32 or bf16, not {variant!r}")
        device = torch_device(ep, torch)
        if variant == "bf16":
            self._bf16 = check_bf16(device, torch, None if device != "cpu" else cpu_bf16_native())
        self._ep, self._device, self._threads, self._variant = ep, device, threads, variant
        torch.set_num_threads(threads)  # intra-op threads; CUDA runs use them for host work
        if not (model_dir / "config.json").is_file():
            raise EdgebenchError(f"{model_dir} is not a Hugging Face model folder (no "
                                 "config.json); build it with 'edgebench models build MODEL'")
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the runner draws its own progress
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, DTYPES[variant]),
                attn_implementation=ATTN_IMPLEMENTATION)
            model = model.to(device).eval()
        except Exception as exc:  # transformers, safetensors and CUDA raise many types
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise EdgebenchError(f"transformers could not load {model_dir} as {variant} on "
                                 f"{device}: {reason}") from None
        self._model = model
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters \
            else "past_key_values"  # transformers >= 5.x renames past_key_values to cache
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = eos if eos is not None else model.config.eos_token_id
        self._eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if device.startswith("cuda"):
            self._gpu_name = torch.cuda.get_device_name(0)

    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None:
        torch = self._torch
        self._max_length, self._ignore_eos = max_length, ignore_eos
        self._cache = None  # free the previous generation's cache first (device memory)
        from transformers import DynamicCache

        try:
            self._cache = DynamicCache(config=self._model.config)
        except TypeError:  # transformers before the config argument
            self._cache = DynamicCache()
        self._length = 0
        self._pending: int | None = None
        self._logits: Any = None
        self._step_ids = torch.zeros((1, 1), dtype=torch.long, device=self._device)
        self._eos = (torch.tensor(self._eos_ids, dtype=torch.long, device=self._device)
                     if self._eos_ids else None)
        if self._device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(0)

    def _forward(self, ids: Any) -> Any:
        """One pass over `ids` appended to the cache; the last position's logits, (vocab,)."""
        total = self._length + ids.shape[1]
        if total > self._max_length:
            raise EdgebenchError(
                f"generation reached {total} tokens, past the {self._max_length} reserved")
        with self._torch.inference_mode():
            out = self._model(input_ids=ids, use_cache=True, logits_to_keep=1,
                              **{self._cache_arg: self._cache})
        self._length = total
        return out.logits[0, -1]

    def _sync(self) -> None:
        if self._device.startswith("cuda"):
            self._torch.cuda.synchronize()

    def prefill(self, prompt_ids: Sequence[int]) -> None:
        torch = self._torch
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self._device)
        self._logits = self._forward(ids)
        self._pending = None
        self._sync()  # the prompt's pass has finished on the GPU before prefill_s is taken

    def next_token(self) -> int:
        if self._pending is not None:
            self._step_ids[0, 0] = self._pending
            self._logits = self._forward(self._step_ids)
        logits = self._logits
        if self._ignore_eos and self._eos is not None:
            logits = logits.index_fill(0, self._eos, float("-inf"))  # a copy: vocab values
        token = int(logits.argmax())  # reading the value waits for the device
        self._sync()
        self._pending = token
        return token

    def peak_device_memory_bytes(self) -> int | None:
        """Peak CUDA memory torch allocated since `begin` (weights included); None on the CPU,
        where the runner's peak RSS covers it."""
        if not self._device.startswith("cuda"):
            return None
        return int(self._torch.cuda.max_memory_allocated(0))

    def close(self) -> None:
        self._cache = None
        self._model = None
        self._logits = None
        if self._torch is not None and self._device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def versions(self) -> BackendVersions:
        import torch

        # no onnxruntime in this runtime: the row's onnxruntime_version column stays empty
        return BackendVersions(torch.__version__, None, None)  # type: ignore[arg-type]

    def ep_options(self) -> dict[str, str]:
        import transformers

        torch = self._torch
        options = {"dtype": DTYPES[self._variant], "threads": str(self._threads),
                   "device": self._device, "attn_implementation": ATTN_IMPLEMENTATION,
                   "kv_cache": "DynamicCache", "torch_version": torch.__version__ if torch else "",
                   "transformers_version": transformers.__version__}
        if self._bf16:
            options["bf16"] = self._bf16  # native, or unknown where the CPU could not be read
        if self._gpu_name:
            options["gpu_name"] = self._gpu_name
            options["cuda_version"] = str(torch.version.cuda)
        return options
