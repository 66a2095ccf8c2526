"""The launcher: new namespaces, an empty root, no privileges, then the program.

bench/quality/sandbox.py starts this file as `python -I -S -B sandbox_child.py CONFIG_JSON`. It
imports only the standard library: none of the project is visible once the root has changed.
Steps: unshare user, mount, net, pid, ipc and uts namespaces; wait while the parent writes the
id maps (only a parent outside the namespace may map a second, unprivileged user); fork pid 1
of the new pid namespace, which builds the root, forks the program and exits when it ends, so
that the kernel kills whatever the program left behind. The verdict goes to a pipe the program
cannot write (close-on-exec).

Why each step: the launcher may be real root, so host files are protected by read-only mounts
and by the host tree being unmounted (pivot_root), not by file permissions. The program runs
chrooted below the namespace's root (so the kernel refuses it nested user namespaces), with an
empty capability bounding set and no_new_privs, and, where the parent is root, as an unmapped
host user, because the kernel exempts real root from RLIMIT_NPROC even inside a namespace.
"""

import ctypes
import json
import os
import platform
import resource
import select
import signal
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# pivot_root has no libc wrapper; its number differs between architectures.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "loongarch64": 41,
                  "armv6l": 218, "armv7l": 218, "armv8l": 218, "i386": 217, "i686": 217,
                  "ppc64le": 203, "s390x": 217}
# Flags a remount must keep: the kernel refuses to clear them on mounts from a parent namespace.
# (getattr: the unsafe mode imports set_limits on systems without these, such as macOS.)
KEEP = tuple((getattr(os, "ST_" + name, 0), flag) for name, flag in (
    ("NOSUID", MS_NOSUID), ("NODEV", MS_NODEV), ("NOEXEC", MS_NOEXEC),
    ("NOATIME", MS_NOATIME), ("NODIRATIME", MS_NODIRATIME), ("RELATIME", MS_RELATIME)))
DEVICES = ("null", "zero", "random", "urandom")
OWN = ("/work", "/prog", "/dev")  # what the sandbox itself puts in its root

libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    def enc(s):
        return None if s is None else s.encode()
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _mount_points_under(path: str) -> list:
    """`path` and every mount below it, from this namespace's mount table."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
                point = point.replace(esc, ch)
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return found


def _bind(source: str, target: str, nodev: int = MS_NODEV) -> None:
    """`source` (a system directory or file) visible read-only and nosuid at `target`."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(source):  # merged /usr: /lib -> usr/lib stays a link
        os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "wb").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    for point in _mount_points_under(target):
        flags = os.statvfs(point).f_flag
        keep = sum(ms for st, ms in KEEP if flags & st)
        _mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | nodev | keep)


def build_root(cfg: dict) -> None:
    """Everything the program may see, on a tmpfs mounted over the (empty) host directory."""
    top, uid = cfg["dir"], cfg["program_id"]
    with open(os.path.join(top, "main.py"), "rb") as f:
        program = f.read()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    _mount("sandbox", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    jail = top + "/jail"
    for source in cfg["binds"]:
        if any(source == own or source.startswith(own + "/") for own in OWN):
            raise OSError(f"{source} would hide under the sandbox's own {', '.join(OWN)}")
        if os.path.lexists(source):
            _bind(source, jail + source)
    os.makedirs(jail + "/dev")
    for name in DEVICES:  # read-only too (the inode is the host's), but devices must open
        _bind("/dev/" + name, f"{jail}/dev/{name}", nodev=0)
    for name in ("work", "prog"):
        os.makedirs(f"{jail}/{name}")
    _mount("work", jail + "/work", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={cfg['tmp_bytes']},nr_inodes=4096,mode=700,uid={uid},gid={uid}")
    with open(jail + "/prog/main.py", "wb") as f:
        f.write(program)
    _mount(None, top, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root syscall number unknown on {platform.machine()}")
    os.chdir(top)
    _check(libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")  # the host tree is gone
    # A root below the namespace's root: the kernel then refuses nested user namespaces,
    # which would give the program capabilities again.
    os.chroot("/jail")
    os.chdir("/")


def set_limits(cfg: dict) -> None:
    """The kernel's limits on the program (also used by the unsafe mode)."""
    for name, value in (("RLIMIT_CPU", cfg["cpu_s"]), ("RLIMIT_AS", cfg["memory_bytes"]),
                        ("RLIMIT_NPROC", cfg["max_processes"]),
                        ("RLIMIT_FSIZE", cfg["tmp_bytes"]), ("RLIMIT_CORE", 0),
                        ("RLIMIT_NOFILE", 256)):  # also bounds pipe and socket buffers
        which = getattr(resource, name)
        hard = value + 1 if name == "RLIMIT_CPU" else value  # SIGXCPU first, then SIGKILL
        ceiling = resource.getrlimit(which)[1]  # a hard limit can only go down
        if ceiling != resource.RLIM_INFINITY:
            value, hard = min(value, ceiling), min(hard, ceiling)
        resource.setrlimit(which, (value, hard))


def _drop_privileges(cfg: dict) -> None:
    """Limits, no capabilities after exec, no privilege gain through setuid files."""
    set_limits(cfg)
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the last capability this kernel knows
                break
            _check(-1, f"drop capability {cap}")
    uid = cfg["program_id"]
    if uid != 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _pid1(cfg: dict, status: int, outer_alive: int) -> None:
    """Pid 1 of the new pid namespace: build the root, run the program, report, exit."""
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "parent-death signal")
    if select.select([outer_alive], [], [], 0)[0]:  # the launcher died before the line above
        os._exit(1)
    build_root(cfg)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir("/work")
            _drop_privileges(cfg)
            env = {"PATH": "/usr/bin:/bin", "HOME": "/work", "TMPDIR": "/work", "LANG": "C.UTF-8"}
            os.execve(cfg["python"], [cfg["python"], *cfg["flags"], "/prog/main.py"], env)
        except BaseException as e:  # noqa: BLE001 - reported as one line, then exit
            os.write(status, f"error sandbox start: {e}\n".encode())
            os._exit(127)
    while True:  # pid 1 reaps every orphan until the program itself ends
        done, code = os.waitpid(-1, 0)
        if done == pid:
            break
    if os.WIFSIGNALED(code):
        os.write(status, f"signal {os.WTERMSIG(code)}\n".encode())
    else:
        os.write(status, f"exit {os.waitstatus_to_exitcode(code)}\n".encode())


def main() -> None:
    cfg = json.loads(sys.argv[1])
    status, go = cfg["status_fd"], cfg["go_fd"]
    for fd in (status, go):
        os.set_inheritable(fd, False)  # the program must not write its own verdict
    os.umask(0o022)
    try:
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID
                            | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    except OSError as e:
        os.write(status, f"error {e}\n".encode())
        os._exit(1)
    os.write(status, b"ready\n")
    if os.read(go, 16) != b"go\n":  # the parent could not write the id maps; it says why
        os._exit(1)
    outer_alive, keep = os.pipe()  # readable (EOF) only once this process is gone
    pid = os.fork()
    if pid == 0:
        os.close(keep)
        try:
            _pid1(cfg, status, outer_alive)
        except Exception as e:  # noqa: BLE001 - any setup failure is one line for the parent
            os.write(status, f"error sandbox setup: {e}\n".encode())
        os._exit(0)  # pid 1 leaving kills everything still in the namespace
    os.waitpid(pid, 0)
    os._exit(0)


if __name__ == "__main__":
    main()
