"""The sandbox for generated code, tested with real runs.

Every attack program exits 0 when its attack worked, so a sandbox that let it through would
score it as passed; each test also checks on the host that the effect did not happen.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.quality.sandbox import ISOLATION, UNSAFE, Limits, Sandbox, isolation_problem

PROBLEM = isolation_problem()
isolated = pytest.mark.skipif(PROBLEM is not None, reason=f"no OS isolation here: {PROBLEM}")
FAST = Limits(cpu_s=2, wall_s=10.0, memory_bytes=512 << 20)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST)


@pytest.fixture()
def open_dir():
    """A world-writable folder under the temp dir: only the sandbox keeps a program out of it,
    whatever user the program runs as."""
    path = Path(tempfile.mkdtemp(prefix="edgebench-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def targets(tmp_path, open_dir):
    """Host paths an attack tries to create: in temp dirs, the home, the current dir and the
    interpreter's prefix (which the sandbox does show, read-only)."""
    name = f"edgebench-pwned-{uuid.uuid4().hex}"
    paths = [open_dir / "pwned", tmp_path / "pwned", Path.home() / name, Path.cwd() / name,
             Path(os.path.realpath(sys.base_prefix)) / name]
    yield [str(p) for p in paths]
    for p in paths:
        p.unlink(missing_ok=True)


def _running(name: str) -> list[int]:
    """Live processes (zombies aside) whose command name is `name`, wherever they were moved."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == name and (
                    not _gone(int(entry.name))):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def _eventually(check, within_s: float = 10.0) -> bool:
    """Killed processes vanish asynchronously; wait a bounded while before calling it a leak."""
    end = time.monotonic() + within_s
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


# ---- what runs on every machine: the refusal and the unsafe mode ----

def test_without_isolation_the_sandbox_refuses_and_names_the_flag():
    missing = "/nonexistent/edgebench/python3"
    assert isolation_problem(missing)
    with pytest.raises(EdgebenchError) as err:
        Sandbox(python=missing)
    message = str(err.value)
    assert "--unsafe-no-isolation" in message and "recorded in every row" in message
    assert "\n" not in message


def test_unsafe_mode_is_recorded_and_still_enforces_the_wall_clock_limit():
    box = Sandbox(Limits(wall_s=1.0), isolated=False)
    assert box.isolation == UNSAFE == "none (--unsafe-no-isolation)"
    out = box.run("import time\ntime.sleep(60)\n")
    assert (out.passed, out.status) == (False, "timeout")


def test_unsafe_mode_runs_in_an_empty_directory_and_kills_what_the_program_left(tmp_path):
    box = Sandbox(FAST, isolated=False)
    out = box.run(f"import os, subprocess\nassert os.listdir('.') == []\n"
                  f"assert os.getcwd() != {os.getcwd()!r}\n"
                  "print(subprocess.Popen(['sleep', '60']).pid)\n")
    assert out.passed, out.detail
    assert _eventually(lambda: _gone(int(out.stdout.split()[-1])))
    assert box.run("raise SystemExit(3)").status == "failed"


# ---- the isolated sandbox ----

@isolated
def test_a_correct_program_passes_and_a_wrong_one_fails(sandbox):
    assert sandbox.isolation == ISOLATION
    ok = sandbox.run("def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('ok')\n")
    assert (ok.passed, ok.status, ok.stdout) == (True, "passed", "ok\n")
    bad = sandbox.run("def add(a, b):\n    return a - b\n\nassert add(2, 3) == 5, 'wrong sum'\n")
    assert (bad.passed, bad.status) == (False, "failed")
    assert bad.detail == "AssertionError: wrong sum"


WRITES = {
    "open": "for p in TARGETS:\n    try:\n        open(p, 'w').write('x')\n        hit = True\n"
            "    except OSError:\n        pass\n",
    "os.system": "import os\nfor p in TARGETS:\n"
                 "    hit |= os.system(f'touch {p} 2>/dev/null') == 0\n",
    "subprocess": "import subprocess\nfor p in TARGETS:\n    hit |= subprocess.run("
                  "['sh', '-c', f'echo x > {p}'], stderr=subprocess.DEVNULL).returncode == 0\n",
    "ctypes": "import ctypes\nlibc = ctypes.CDLL(None)\nfor p in TARGETS:\n"
              "    hit |= libc.creat(p.encode(), 0o644) >= 0\n"
              "    hit |= libc.system(f'touch {p} 2>/dev/null'.encode()) == 0\n",
    # Regain write access: remount a read-only bind, first in a nested user namespace.
    "remount": "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.unshare(0x10000000 | 0x20000)\n"
               "for p in TARGETS:\n    libc.mount(None, p.rsplit('/', 1)[0].encode(), None, "
               "32 | 4096, None)\n    try:\n        open(p, 'w').write('x')\n        hit = True\n"
               "    except OSError:\n        pass\n",
}


@isolated
@pytest.mark.parametrize("how", sorted(WRITES))
def test_writing_outside_the_sandbox_is_contained(sandbox, targets, how):
    program = f"TARGETS = {targets!r}\nhit = False\n{WRITES[how]}raise SystemExit(0 if hit else 1)\n"
    out = sandbox.run(program)
    assert not out.passed and out.status == "failed", out
    assert [p for p in targets if os.path.exists(p)] == []


@isolated
def test_the_users_files_cannot_be_read(sandbox, open_dir):
    secret = open_dir / "secret.txt"
    secret.write_text("s3cr3t-" + uuid.uuid4().hex)
    secret.chmod(0o644)
    paths = [str(secret), str(Path(__file__).resolve()), str(Path.cwd())]
    out = sandbox.run(f"import os\nseen = []\nfor p in {paths!r}:\n    try:\n"
                      "        seen.append(open(p).read() if os.path.isfile(p) else os.listdir(p))\n"
                      "    except OSError:\n        pass\nprint(seen)\n"
                      "raise SystemExit(0 if seen else 1)\n")
    assert not out.passed and out.status == "failed"
    assert secret.read_text() not in out.stdout


@isolated
def test_a_socket_reaches_nothing(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        out = sandbox.run(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), "
                          "timeout=3)\ns.sendall(b'pwned')\n")
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()
    assert not out.passed and out.status == "failed"
    assert "unreachable" in out.detail or "refused" in out.detail


@isolated
def test_the_verdict_cannot_be_forged_through_inherited_descriptors(sandbox):
    out = sandbox.run("import os\nfor fd in range(3, 64):\n    try:\n"
                      "        os.write(fd, b'exit 0\\n')\n    except OSError:\n        pass\n"
                      "raise SystemExit(1)\n")
    assert (out.passed, out.status) == (False, "failed")


@isolated
def test_a_fork_bomb_is_contained_and_leaves_nothing_behind(sandbox):
    name = f"eb-{uuid.uuid4().hex[:8]}"  # the command name every forked process inherits
    named = f"import ctypes, os, time\nctypes.CDLL(None).prctl(15, {name.encode()!r})\n"
    # Linear first: holding more processes than the limit must fail (it exits 0 otherwise).
    held = sandbox.run(named + "for _ in range(200):\n    if os.fork() == 0:\n"
                               "        time.sleep(30)\n        os._exit(0)\n")
    assert not held.passed and held.status == "failed", held
    assert "BlockingIOError" in held.detail
    assert _eventually(lambda: _running(name) == [])
    # Only with the limit shown to hold: forking without end, until the wall-clock limit.
    bomb = Sandbox(Limits(cpu_s=2, wall_s=3.0)).run(
        named + "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert not bomb.passed and bomb.status in ("timeout", "killed"), bomb
    assert _eventually(lambda: _running(name) == [])
    assert subprocess.run(["true"]).returncode == 0  # the host still starts processes


@isolated
def test_an_endless_loop_ends_at_the_cpu_limit_and_a_sleeper_at_the_wall_clock(sandbox):
    spin = Sandbox(Limits(cpu_s=1, wall_s=30.0)).run("while True:\n    pass\n")
    assert (spin.passed, spin.status) == (False, "timeout")
    assert "CPU limit" in spin.detail
    sleeper = Sandbox(Limits(wall_s=1.0)).run("import time\ntime.sleep(60)\n")
    assert (sleeper.passed, sleeper.status, sleeper.detail) == (
        False, "timeout", "wall-clock limit 1 s")


@isolated
def test_memory_beyond_the_limit_fails(sandbox):
    out = sandbox.run(f"x = bytearray({FAST.memory_bytes * 2})\nx[-1] = 1\n")
    assert (out.passed, out.status, out.detail) == (False, "failed", "MemoryError")


@isolated
def test_output_is_capped_to_its_tail():
    out = Sandbox(Limits(output_bytes=1000)).run("print('x' * 10**6)\nprint('end')\n")
    assert out.passed and len(out.stdout) == 1000 and out.stdout.endswith("end\n")
