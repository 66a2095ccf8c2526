"""The GGUF from the Hugging Face Hub, for recipes whose [source.hub] names a published file that
is byte for byte the recipe's GGUF.

huggingface_hub keeps its own cache (HF_HUB_CACHE), so a file another tool already downloaded is
not fetched again; HF_ENDPOINT selects the server (a mirror), HF_HUB_OFFLINE=1 allows only that
cache. The file is hard-linked (or copied) into edgebench's cache and checked there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from bench.models.recipes import HubFile
from bench.models.wheels import SourceFailed

Progress = Callable[[str], None]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 240 else line[:237] + "..."


def _unreachable(endpoint: str) -> str | None:
    """Why the endpoint cannot be reached, or None. huggingface_hub retries a failed connection
    for about 25 s before it gives up; one quick connect spares an offline machine that wait.
    Behind a proxy only huggingface_hub's own request can tell, so nothing is checked there."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                       "ALL_PROXY", "all_proxy")):
        return None
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=5).close()
    except OSError as exc:
        return f"cannot reach {url.hostname}:{port} ({exc.strerror or exc})"
    return None


def describe(hub: HubFile) -> str:
    return f"{hub.repo}/{hub.file}" + (f"@{hub.revision}" if hub.revision else "")


def download(hub: HubFile, out: Path, progress: Progress) -> None:
    """Puts the Hub file at `out` (a hard link into the Hub cache where the filesystem allows,
    else a copy); the caller checks its hash."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise SourceFailed("huggingface_hub is not installed "
                           "(pip install 'edgebench[convert]')") from None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    why_offline = "HF_HUB_OFFLINE is set" if _offline() else _unreachable(
        endpoint or "https://huggingface.co")
    progress(f"getting {describe(hub)} from {endpoint or 'the Hugging Face Hub'}"
             + (f" ({why_offline}: its local cache only)" if why_offline else ""))
    try:
        cached = hf_hub_download(repo_id=hub.repo, filename=hub.file, revision=hub.revision,
                                 endpoint=endpoint, cache_dir=os.environ.get("HF_HUB_CACHE"),
                                 local_files_only=why_offline is not None)
    except Exception as exc:  # offline, unreachable, gated, missing: the next source is tried
        if why_offline:
            raise SourceFailed(f"{describe(hub)}: {why_offline}, and the file is not in the "
                               "Hugging Face cache") from None
        raise SourceFailed(f"{describe(hub)}: {type(exc).__name__}: {_first_line(exc)}") from None
    blob = Path(cached).resolve()
    try:
        os.link(blob, out)
    except OSError:
        import shutil

        shutil.copyfile(blob, out)
