"""Run one generated program in its own process, under OS isolation and limits.

Generated code is untrusted and Python-level guards are not isolation. Each program runs in new
user, network, mount, pid, ipc and uts namespaces, on an empty root that holds read-only system
directories, the interpreter, an empty writable /work and nothing of the user's
(sandbox_child.py builds it; docs/sandbox.md says what it does and does not stop). Where the
kernel does not allow that, Sandbox refuses unless the caller passes isolated=False (the CLI's
--unsafe-no-isolation), which `Sandbox.isolation` names so that every row records it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from bench.errors import EdgebenchError

CHILD = Path(__file__).with_name("sandbox_child.py")
ISOLATION = "unshare:user,net,mount,pid,ipc,uts"
UNSAFE = "none (--unsafe-no-isolation)"
# Isolated mode (no environment, no user site, script dir not on the path), standard library
# only (no site-packages), no .pyc written, UTF-8 whatever the locale.
PYTHON_FLAGS = ("-I", "-S", "-B", "-X", "utf8")
# What the interpreter needs from the host, read-only; /etc/ld.so.cache only, not /etc.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache")
NOBODY = 65534  # the program's user where the parent is root (root ignores RLIMIT_NPROC)
GRACE_S = 2.0  # after a kill, how long to wait for the pipes to close
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Limits:
    """What one program may use. cpu_s, memory_bytes (address space) and max_processes are
    per-process kernel limits, so together they may take max_processes * memory_bytes: hence
    few processes (HumanEval needs one). tmp_bytes: the size of /work and the largest file."""

    cpu_s: int = 10
    wall_s: float = 20.0
    memory_bytes: int = 512 << 20
    max_processes: int = 8
    output_bytes: int = 64 * 1024  # of stdout and of stderr, the last ones kept
    tmp_bytes: int = 16 << 20


@dataclass(frozen=True)
class Outcome:
    """How one program ended; passed only if it exited 0 within its limits."""

    passed: bool
    status: str  # "passed", "failed", "timeout", "killed" (by a signal), "error" (the sandbox)
    detail: str  # one short line: the last line of stderr, the limit or the signal
    wall_s: float
    stdout: str = ""
    stderr: str = ""


def interpreter(python: str | None = None) -> str:
    """The real file of `python` (default: the base interpreter, not a venv's link to it),
    since that path must also exist inside the sandbox, where links outside it do not."""
    return os.path.realpath(python or getattr(sys, "_base_executable", None) or sys.executable)


def bind_paths(python: str) -> list[str]:
    """System paths plus the interpreter's prefix when it lives elsewhere (pyenv, conda)."""
    paths = list(SYSTEM_PATHS)
    for extra in (os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(python))):
        if not any(extra == p or extra.startswith(p + "/") for p in paths):
            paths.append(extra)
    return paths


def isolation_problem(python: str | None = None) -> str | None:
    """None when a trivial program runs in the full sandbox here, else a one-line reason.
    It runs the real thing rather than reading sysctls: kernels, containers and security
    modules restrict namespaces in too many different ways to predict."""
    if not sys.platform.startswith("linux"):
        return f"OS isolation needs Linux namespaces, and this is {sys.platform}"
    outcome = _run_isolated(interpreter(python), Limits(cpu_s=5, wall_s=10.0), "pass\n")
    return None if outcome.passed else outcome.detail


class Sandbox:
    """Runs programs one at a time; construct it once per run, as it probes the kernel."""

    def __init__(self, limits: Limits = Limits(), *, isolated: bool = True,
                 python: str | None = None) -> None:
        self.limits = limits
        self.isolated = isolated
        self.python = interpreter(python)  # runs the launcher and the program
        if isolated and (problem := isolation_problem(self.python)):
            raise EdgebenchError(
                f"cannot isolate generated code here ({problem}); allow unprivileged user "
                "namespaces, or pass --unsafe-no-isolation to run generated code without OS "
                "isolation (recorded in every row)")

    @property
    def isolation(self) -> str:
        """What every result row records about how its code ran."""
        return ISOLATION if self.isolated else UNSAFE

    def run(self, program: str) -> Outcome:
        if self.isolated:
            return _run_isolated(self.python, self.limits, program)
        return _run_unsafe(self.python, self.limits, program)


def _run_isolated(python: str, limits: Limits, program: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="edgebench-sandbox-") as d:
        Path(d, "main.py").write_text(program, encoding="utf-8")
        status_r, status_w = os.pipe()
        go_r, go_w = os.pipe()
        program_id = NOBODY if os.geteuid() == 0 else 0
        cfg = {"status_fd": status_w, "go_fd": go_r, "dir": d, "python": python,
               "flags": PYTHON_FLAGS, "binds": bind_paths(python), "program_id": program_id,
               **asdict(limits)}
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [python, "-I", "-S", "-B", str(CHILD), json.dumps(cfg)], cwd="/", env=BASE_ENV,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(status_w, go_r))
        except OSError as e:
            for fd in (status_r, go_w):
                os.close(fd)
            return Outcome(False, "error", f"cannot start {python}: {e.strerror}", 0.0)
        finally:
            os.close(status_w)
            os.close(go_r)
        problem = _map_ids(proc.pid, status_r, program_id, limits.wall_s)
        with open(go_w, "wb") as go:
            go.write(b"" if problem else b"go\n")
        if problem:
            proc.kill()
        # Killing the launcher kills pid 1 of the namespace (parent-death signal), and with it
        # everything in the namespace.
        out, err, status, timed_out = _collect(proc, status_r, limits, proc.kill, lambda: None)
        wall_s = time.monotonic() - start
    if problem:
        why = f"{problem}: {_last_line(err)}" if err.strip() else problem
        return Outcome(False, "error", why, wall_s, out, err)
    if not status and not timed_out:
        status = "error " + (_last_line(err) or f"launcher exit {proc.returncode}")
    return _verdict(status, timed_out, limits, wall_s, out, err)


def _map_ids(pid: int, status_fd: int, program_id: int, wall_s: float) -> str | None:
    """Once the launcher has unshared, map its user (and, as root, the program's): None or why."""
    ready = select.select([status_fd], [], [], wall_s)[0] and os.read(status_fd, 256)
    if ready != b"ready\n":
        line = (ready or b"").decode(errors="replace").strip()
        return line.removeprefix("error ") or "the launcher did not start"
    uid, gid = os.geteuid(), os.getegid()
    maps = {"uid_map": f"0 {uid} 1\n", "gid_map": f"0 {gid} 1\n"}
    if program_id:
        maps = {k: v + f"{program_id} {program_id} 1\n" for k, v in maps.items()}
    try:
        if not program_id:  # an unprivileged parent may map only itself, without setgroups
            Path(f"/proc/{pid}/setgroups").write_text("deny")
        for name, text in maps.items():
            Path(f"/proc/{pid}/{name}").write_text(text)
    except OSError as e:
        return f"cannot write the sandbox's user id map: {e.strerror}"
    return None


def _run_unsafe(python: str, limits: Limits, program: str) -> Outcome:
    """Own process, own session, empty temporary cwd, rlimits; no namespaces. Weaker."""
    from bench.quality.sandbox_child import set_limits

    with tempfile.TemporaryDirectory(prefix="edgebench-unsafe-", ignore_cleanup_errors=True) as d:
        work = Path(d, "work")
        work.mkdir()
        Path(d, "main.py").write_text(program, encoding="utf-8")
        env = {**BASE_ENV, "HOME": str(work), "TMPDIR": str(work)}
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [python, *PYTHON_FLAGS, str(Path(d, "main.py"))], cwd=work, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, preexec_fn=lambda: set_limits(asdict(limits)))
        except (OSError, subprocess.SubprocessError) as e:
            return Outcome(False, "error", f"cannot start {python}: {e}", 0.0)
        kill_group = (lambda: _killpg(proc.pid))  # the program and what it started in its session
        out, err, _, timed_out = _collect(proc, None, limits, kill_group, kill_group)
        wall_s = time.monotonic() - start
    code = proc.returncode
    status = f"signal {-code}" if code < 0 else f"exit {code}"
    return _verdict(status, timed_out, limits, wall_s, out, err)


def _collect(proc: subprocess.Popen, status_fd: int | None, limits: Limits,
             kill: Callable[[], None], on_exit: Callable[[], None]
             ) -> tuple[str, str, str, bool]:
    """stdout and stderr (tails), the status line, and whether the wall-clock limit struck."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    if status_fd is not None:
        bufs[status_fd] = bytearray()
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + limits.wall_s
    timed_out = ended = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if not ended and proc.poll() is not None:
                ended = True
                on_exit()
                deadline = min(deadline, now + GRACE_S)
            if now >= deadline:
                if timed_out or ended:
                    break
                timed_out = True
                kill()
                deadline = now + GRACE_S
                continue
            for key, _ in sel.select(min(deadline - now, 0.1)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                buf += data
                del buf[:max(0, len(buf) - limits.output_bytes)]
    finally:
        sel.close()
        if status_fd is not None:
            os.close(status_fd)
        if proc.poll() is None:
            kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    text = {fd: buf.decode(errors="replace") for fd, buf in bufs.items()}
    status = text.get(status_fd, "") if status_fd is not None else ""
    return text[out_fd], text[err_fd], status.partition("\n")[0], timed_out


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _verdict(status: str, timed_out: bool, limits: Limits, wall_s: float, out: str, err: str
             ) -> Outcome:
    """The outcome from the status line ("exit N", "signal N" or "error WHY")."""
    kind, _, value = status.partition(" ")
    if timed_out:
        result, detail = "timeout", f"wall-clock limit {limits.wall_s:g} s"
    elif kind == "exit":
        code = int(value)
        result, detail = ("passed", "exit 0") if code == 0 else (
            "failed", _last_line(err) or f"exit {code}")
    elif kind == "signal":
        number = int(value)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        result, detail = ("timeout", f"CPU limit {limits.cpu_s} s ({name})") if (
            number == signal.SIGXCPU) else ("killed", name)
    else:
        result, detail = "error", value
    return Outcome(result == "passed", result, detail, wall_s, out, err)
