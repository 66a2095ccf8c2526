"""scripts/llamacpp_cmake_args.py: the instruction sets a llama.cpp build names, from cpuinfo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "llamacpp_cmake_args.py"


def _module():
    spec = importlib.util.spec_from_file_location("llamacpp_cmake_args", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cpuinfo(flags: str) -> str:
    return f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n"


def test_avx2_machine_gets_avx2_and_no_avx512_or_amx():
    args = _module().cmake_args("x86_64", _cpuinfo("fpu sse2 avx avx2 fma f16c bmi2")).split()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args and "-DGGML_FMA=ON" in args
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AVX512_VNNI=OFF" in args


def test_amx_is_off_even_where_the_cpu_reports_it():
    flags = "avx avx2 fma f16c bmi2 avx512f avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8"
    args = _module().cmake_args("x86_64", _cpuinfo(flags)).split()
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_VBMI=ON", "-DGGML_AVX512_VNNI=ON",
            "-DGGML_AVX512_BF16=ON"} <= set(args)
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)


def test_arm_and_unreadable_cpuinfo_leave_it_to_llama_cpp(tmp_path, capsys):
    mod = _module()
    assert mod.cmake_args("aarch64", _cpuinfo("fp asimd sve")) == ""
    assert mod.cmake_args("x86_64", "no flags here") == ""
    assert mod.main(["x", str(tmp_path / "missing")]) == 0
    assert capsys.readouterr().out.strip() in ("", mod.cmake_args("x86_64", ""))
