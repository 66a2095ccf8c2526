"""llama.cpp through llama-cpp-python's low-level API: a recipe's original GGUF, or any GGUF.

The loop is llama-bench's: the prompt is decoded as one batch with logits for its last position
only (`llama_batch_get_one`, as llama-bench's test_prompt), each later token as a one-token
batch (test_gen), with llama-bench's context settings (flash attention `auto`, f16 KV cache,
threads for both generation and batches). The batch sizes are set so a prompt is always one
batch: n_batch = n_ubatch = the generation's max_length (llama-bench: 2048 / 512, the same
single batch for pp512). Greedy selection is an argmax over the last position's logits read in
place, with no sampler chain. What was used is written into every row's ep_options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from bench.errors import EdgebenchError
from bench.run.backends.base import BackendVersions

FLASH_ATTN = "auto"  # llama-bench's default (-fa auto)


class LlamaCppBackend:
    name = "llamacpp"
    runtimes = ("gguf",)

    def __init__(self) -> None:
        self._ll: Any = None
        self._model: Any = None
        self._vocab: Any = None
        self._ctx: Any = None
        self._ctx_size = 0  # the max_length the current context was made for
        self._threads = 0
        self._n_vocab = 0
        self._eog: Any = None  # numpy index array of end-of-generation tokens
        self._ignore_eos = True
        self._pending = False  # prompt decoded, its logits not yet selected from
        self._last: int | None = None
        self._path: Path | None = None

    def load(self, model_path: Path, *, ep: str, threads: int) -> None:
        import numpy as np
        import llama_cpp as ll
        from llama_cpp import _logger

        if ep != "cpu":
            raise EdgebenchError(f"the llamacpp backend runs on the CPU (--ep cpu), not {ep!r}: "
                                 "llama-cpp-python is installed as a CPU build")
        if threads < 1:
            raise EdgebenchError(f"the llamacpp backend needs threads >= 1, not {threads}")
        path = Path(model_path)
        if not path.is_file():
            raise EdgebenchError(f"GGUF {path} does not exist; run 'edgebench models build "
                                 "MODEL' to fetch the recipe's GGUF, or pass a .gguf file")
        _logger.set_verbose(False)  # llama.cpp logs every tensor to stderr otherwise
        ll.llama_backend_init()
        self._ll, self._threads, self._path = ll, threads, path
        params = ll.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = ll.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise EdgebenchError(f"llama.cpp could not load {path}: not a GGUF this "
                                 f"llama-cpp-python {ll.__version__} can read")
        self._vocab = ll.llama_model_get_vocab(self._model)
        self._n_vocab = ll.llama_vocab_n_tokens(self._vocab)
        # Every end-of-generation token (eos, eot, eom...) is masked when EOS is ignored.
        self._eog = np.array([t for t in range(self._n_vocab)
                              if ll.llama_vocab_is_eog(self._vocab, t)], dtype=np.int64)

    def _make_context(self, max_length: int) -> None:
        ll = self._ll
        self._free_context()
        params = ll.llama_context_default_params()
        params.n_ctx = max_length
        params.n_batch = params.n_ubatch = max_length  # any prompt <= max_length: one batch
        params.n_threads = params.n_threads_batch = self._threads
        params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_AUTO
        params.no_perf = True
        self._ctx = ll.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise EdgebenchError(f"llama.cpp could not create a context of {max_length} "
                                 f"tokens for {self._path} (out of memory?)")
        self._ctx_size = max_length

    def begin(self, max_length: int, *, ignore_eos: bool = True) -> None:
        if self._ctx is None or max_length != self._ctx_size:
            self._make_context(max_length)  # outside the timed region, like the ort buffers
        self._ll.llama_memory_clear(self._ll.llama_get_memory(self._ctx), True)
        self._ignore_eos = ignore_eos
        self._pending, self._last = False, None

    def _decode(self, ids: Sequence[int]) -> None:
        ll = self._ll
        tokens = (ll.llama_token * len(ids))(*ids)
        rc = ll.llama_decode(self._ctx, ll.llama_batch_get_one(tokens, len(ids)))
        if rc != 0:
            raise EdgebenchError(f"llama_decode failed (code {rc}) at {len(ids)} token(s) with "
                                 f"a context of {ll.llama_n_ctx(self._ctx)}: the generation "
                                 "is longer than the context begin() was given")
        ll.llama_synchronize(self._ctx)

    def prefill(self, prompt_ids: Sequence[int]) -> None:
        n_batch = self._ll.llama_n_batch(self._ctx)
        if len(prompt_ids) > n_batch:
            raise EdgebenchError(f"a prompt of {len(prompt_ids)} tokens is longer than the "
                                 f"batch ({n_batch}): call begin() with the whole length")
        self._decode(prompt_ids)
        self._pending = True

    def next_token(self) -> int:
        import numpy as np

        ll = self._ll
        if not self._pending:
            if self._last is None:
                raise EdgebenchError("next_token() before prefill()")
            self._decode([self._last])
        self._pending = False
        logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(self._ctx, -1),
                                       shape=(self._n_vocab,))
        if self._ignore_eos and self._eog.size:
            logits[self._eog] = -np.inf  # llama.cpp's own buffer; the next decode rewrites it
        self._last = int(logits.argmax())
        return self._last

    def _free_context(self) -> None:
        if self._ctx is not None:
            self._ll.llama_free(self._ctx)
            self._ctx, self._ctx_size = None, 0

    def close(self) -> None:
        if self._ll is None:
            return
        self._free_context()
        if self._model is not None:
            self._ll.llama_model_free(self._model)
            self._model = None

    def versions(self) -> BackendVersions:
        import llama_cpp as ll

        # No onnxruntime runs here: the rows' onnxruntime columns are empty (None), as the
        # llama-bench importer writes them.
        return BackendVersions(ll.__version__, None, None)

    def ep_options(self) -> dict[str, str]:
        """llama-bench's settings as it reports them, plus the build's instruction sets."""
        import llama_cpp as ll

        opts = {"n_threads": str(self._threads), "n_threads_batch": str(self._threads),
                "flash_attn": FLASH_ATTN, "type_k": "f16", "type_v": "f16",
                "n_gpu_layers": "0", "use_mmap": "true",
                "llama_cpp_python": ll.__version__,
                "system_info": ll.llama_print_system_info().decode("utf-8", "replace").strip()}
        if self._ctx is not None:
            opts.update(n_ctx=str(ll.llama_n_ctx(self._ctx)),
                        n_batch=str(ll.llama_n_batch(self._ctx)),
                        n_ubatch=str(ll.llama_n_ubatch(self._ctx)))
        return opts
