"""What this CPU can do, from /proc/cpuinfo's flags: the vector and matrix extensions that
decide the fastest path (BF16 autocast in training, OpenVINO BF16/INT8 at inference). Shared by
the runtime (doctor, precision choice) and training (--amp), so it lives in the contract floor.
"""

from __future__ import annotations

from pathlib import Path

# CPU flags (Linux /proc/cpuinfo names) that matter for the precision choice.
CPU_FEATURES = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
)


def cpu_features(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of CPU_FEATURES this CPU has (all False where /proc/cpuinfo is unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {f: f in flags for f in CPU_FEATURES}


def cpu_has_bf16(features: dict[str, bool] | None = None) -> bool:
    f = cpu_features() if features is None else features
    return bool(f.get("avx512_bf16") or f.get("amx_bf16"))


def cpu_has_int8_dot(features: dict[str, bool] | None = None) -> bool:
    """VNNI or AMX: 8-bit dot products in one instruction (without, INT8 uses AVX2's
    multiply-add pairs, which are slower and saturate at 16 bits)."""
    f = cpu_features() if features is None else features
    return bool(f.get("avx512_vnni") or f.get("avx_vnni") or f.get("amx_int8"))
