"""What this computer is, as far as training speed goes: the CPU model, its feature flags, and which
dtype policy ``--precision auto`` picks on it; and the one process-wide setting speed asks for (the
garbage collector leaves the imported libraries alone).

Pure Python (``/proc/cpuinfo``, ``gc``); nothing here imports TensorFlow, so the CLIs and benchmark headers
can ask before it loads.
"""

from __future__ import annotations

import gc
import os
import platform
from typing import Dict, FrozenSet, Optional

from tfcourse.config import PRECISIONS

# The CPU features whose presence makes bfloat16 matmuls and convolutions pay off in oneDNN: AMX's
# bfloat16 tiles (Intel Sapphire Rapids and later) and AVX-512 BF16's dot products (AMD Zen 4 and later,
# Intel Cooper Lake): measured on an EPYC with avx512_bf16 and no AMX, 1.63x vgg and 1.39x cnn training
# images/s at the same test accuracy (docs/speed.md). Without either, bfloat16 is emulated and slower.
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# The flags a benchmark header and a run record name: vector width and the bfloat16 units.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def _cpuinfo_line(prefix: str, path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith(prefix)), None)
    except OSError:
        return None


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    return _cpuinfo_line("model name", cpuinfo) or platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> FrozenSet[str]:
    """Every feature flag of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    return frozenset((_cpuinfo_line("flags", cpuinfo) or "").split())


def speed_flags(cpuinfo: str = "/proc/cpuinfo") -> Dict[str, bool]:
    """The flags that decide TensorFlow's speed here, each present or not."""
    flags = cpu_flags(cpuinfo)
    return {flag: flag in flags for flag in SPEED_FLAGS}


def describe(cpuinfo: str = "/proc/cpuinfo") -> str:
    """One line: CPU model, cores and the speed flags, e.g. ``AMD EPYC, 2 cores (avx2 yes, ..., amx_bf16 no)``."""
    flags = ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in speed_flags(cpuinfo).items())
    return f"{cpu_model(cpuinfo)}, {os.cpu_count()} cores ({flags})"


def resolve_precision(requested: str, cpuinfo: str = "/proc/cpuinfo") -> Dict[str, str]:
    """The Keras dtype policy for ``--precision`` and why.

    ``auto`` is ``mixed_bfloat16`` on a CPU with AMX-BF16 or AVX-512 BF16 and ``float32`` everywhere else.

    Returns:
        ``{"requested", "policy", "reason"}``, as a run records it in ``config.json``.

    Raises:
        ValueError: For a value that is not one of ``PRECISIONS``.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"--precision {requested!r} is not one of {', '.join(PRECISIONS)}.")
    if requested != "auto":
        return {"requested": requested, "policy": requested, "reason": "asked for"}
    flags = cpu_flags(cpuinfo)
    found = [flag for flag in BFLOAT16_FLAGS if flag in flags]
    if found:
        return {"requested": "auto", "policy": "mixed_bfloat16", "reason": f"the CPU has {', '.join(found)}"}
    return {
        "requested": "auto",
        "policy": "float32",
        "reason": f"the CPU has no {' or '.join(BFLOAT16_FLAGS)} (bfloat16 would not pay off)",
    }


_frozen = False


def freeze_imported_objects() -> None:
    """Takes every object alive now out of the cyclic garbage collector's reach, once per process.

    Called by the command lines once TensorFlow, Keras and KerasTuner are imported: ~420,000 objects that
    live as long as the process. Every full collection walked them all (0.2 s each on 2 CPU cores), and
    full collections are frequent here: ``keras.backend.clear_session()`` and KerasTuner run
    ``gc.collect()`` before every model and trial, and tracing a training step allocates enough to start
    more (a 6-trial search runs 1.35x faster frozen: ``benchmarks/results/gc_freeze.md``). Objects
    created afterwards (models, datasets, traced graphs) are collected as before; freezing once keeps what
    is never collected to what was alive at the first call (``gc.freeze``).
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
