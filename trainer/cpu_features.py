"""What the CPU can do natively, where it decides how to train.

bf16 autocast on the CPU is fast only where the processor has bf16 instructions (AVX-512 BF16 or AMX):
on the development machine of 2026-11-27 (avx512_bf16) it ran a T + D step 1.9× faster than fp32; on an
AVX2-only AMD EPYC (2026-11-29) the same edit run took about 100 s per step in bf16 against 9 s in fp32
— PyTorch falls back to its slow reference convolution (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from pathlib import Path

#: /proc/cpuinfo flags of native bf16 arithmetic.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty where it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether bf16 autocast on this CPU is worth it (see the module docstring)."""
    return bool(BF16_FLAGS & cpu_flags(cpuinfo))
