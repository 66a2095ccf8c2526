#!/usr/bin/env python3
"""Print CMAKE_ARGS for compiling llama-cpp-python on this machine (the `llamacpp` extra).

llama.cpp's default, GGML_NATIVE=ON (-march=native), died with "Illegal instruction" on a cloud
VM whose CPU reports AMX (docs/backends.md), so on x86-64 this names each instruction set the
CPU lists in /proc/cpuinfo and turns native detection and AMX off. Elsewhere (Arm boards,
macOS) it prints nothing: llama.cpp's own detection is used. Standard library only: it runs
before the virtual environment exists, as in the README's test command:
    CMAKE_ARGS="$(python3 scripts/llamacpp_cmake_args.py)" pip install -e '.[llamacpp]'
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# /proc/cpuinfo flag -> llama.cpp CMake option (ggml/CMakeLists.txt)
X86_FLAGS = (("avx", "GGML_AVX"), ("avx2", "GGML_AVX2"), ("fma", "GGML_FMA"),
             ("f16c", "GGML_F16C"), ("bmi2", "GGML_BMI2"), ("avx512f", "GGML_AVX512"),
             ("avx512vbmi", "GGML_AVX512_VBMI"), ("avx512_vnni", "GGML_AVX512_VNNI"),
             ("avx512_bf16", "GGML_AVX512_BF16"), ("avx_vnni", "GGML_AVX_VNNI"))
ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The `flags` of the first processor in a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cmake_args(machine: str, cpuinfo: str) -> str:
    if machine.lower() not in ("x86_64", "amd64"):
        return ""
    flags = cpu_flags(cpuinfo)
    if not flags:
        return ""  # no flags line (an unusual kernel): leave it to llama.cpp
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{option}={'ON' if flag in flags else 'OFF'}" for flag, option in X86_FLAGS]
    args += [f"-D{option}=OFF" for option in ALWAYS_OFF]
    return " ".join(args)


def main(argv: list[str]) -> int:
    cpuinfo_path = Path(argv[1]) if len(argv) > 1 else Path("/proc/cpuinfo")
    try:
        cpuinfo = cpuinfo_path.read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    print(cmake_args(platform.machine(), cpuinfo))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
