"""What this computer is, as far as training speed goes: the CPU model, its feature flags, and which
dtype policy ``--precision auto`` picks on it; and the one process-wide setting speed asks for (the
garbage collector leaves the imported libraries alone); and TensorFlow's start-up, loaded quietly.

Pure Python (``/proc/cpuinfo``, ``gc``); importing this module does not import TensorFlow, so the CLIs and
benchmark headers can ask before it loads (``load_tensorflow`` loads it, when a command asks).
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import re
import sys
import tempfile
from typing import Dict, FrozenSet, Iterator, List, Optional

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


# TensorFlow's C++ start-up lines on a CPU machine, none of which is a fault: the absl preamble, INFO and
# WARNING lines (oneDNN on, no CUDA drivers, the CPU-instructions notice and its continuation line), and the
# ERROR lines the CUDA-enabled ``tensorflow`` wheel prints when it finds no GPU ("failed call to cuInit").
# Every other ERROR or FATAL line, and anything else written to stderr meanwhile, is passed through.
_STARTUP_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_CPP_LOG_LINE = re.compile(r"^(?P<level>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ (?P<source>[\w./-]+):\d+\] ")
_NO_GPU_ERROR = re.compile(r"cuInit|cuda_platform|cuda_executor|cuda_diagnostics|cuda drivers|CUDA_ERROR", re.I)
_CONTINUATION = "To enable the following instructions:"
STARTUP_LOG_ENV = "TFCOURSE_TF_STARTUP_LOG"  # set to 1 to see TensorFlow's start-up lines as they are


def startup_noise(lines: List[str]) -> List[bool]:
    """For each line of what TensorFlow printed while starting, whether it is known start-up noise.

    Noise: the absl preamble, INFO and WARNING lines of TensorFlow's C++ logging, its ERROR lines about a
    missing CUDA driver, and the one known continuation line (the CPU-instructions notice's second line).
    Everything else is kept: other ERROR and FATAL lines, Python warnings, tracebacks, any other text.
    """
    noise, previous = [], False
    for line in lines:
        match = _CPP_LOG_LINE.match(line)
        if line.strip() == _STARTUP_PREAMBLE:
            previous = True
        elif match:
            previous = match["level"] in "IW" or (match["level"] == "E" and bool(_NO_GPU_ERROR.search(line)))
        else:
            previous = previous and line.startswith(_CONTINUATION)
        noise.append(previous)
    return noise


@contextlib.contextmanager
def filtered_stderr(show_all: bool = False) -> Iterator[None]:
    """Within the block, what is written to file descriptor 2 (C++ logging included) is held back, then
    written to stderr without ``startup_noise``'s lines (``show_all``: everything, as it was).

    On an exception in the block everything held back is written unfiltered, so nothing a failure printed
    is lost.
    """
    if show_all:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = lines if failed else [line for line, noise in zip(lines, startup_noise(lines)) if not noise]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def load_tensorflow(show_startup: bool = False) -> None:
    """Imports TensorFlow and Keras and initialises the devices, without TensorFlow's start-up lines.

    The command lines call it before their first TensorFlow work, so a user's first screen is tfcourse's
    own. The lines TensorFlow prints while loading (``startup_noise``) are hidden, unless ``show_startup``
    or the environment variable ``TFCOURSE_TF_STARTUP_LOG=1`` asks for them; real errors are always shown.
    Listing the devices is what makes the CUDA build try the GPU driver, so its "failed call to cuInit"
    falls inside the quiet window too. Later calls do nothing.
    """
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return
    with filtered_stderr(show_all=show_startup or os.environ.get(STARTUP_LOG_ENV, "") not in ("", "0")):
        import keras  # noqa: F401  (loaded inside the quiet window)
        import tensorflow as tf

        tf.config.list_physical_devices()
