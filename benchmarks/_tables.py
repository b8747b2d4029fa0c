"""What every benchmark does with its finished table: a header saying where, when and how it was
measured, then the table, printed and written to ``benchmarks/results/``."""

import datetime
import os
import platform
import shlex
import sys

from tfcourse import machine


def machine_line() -> str:
    """One line: CPU model, cores, the flags that matter, TensorFlow, Keras and Python versions."""
    versions = []
    for module in ("tensorflow", "keras", "keras_tuner"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    return f"{machine.describe()}; {', '.join(versions)}; Python {platform.python_version()}"


def header(command=None) -> str:
    """The lines every results file opens with: machine, date (UTC) and the command that wrote it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = command if command is not None else ([os.path.relpath(os.path.abspath(sys.argv[0]), root)] + sys.argv[1:])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Machine: {machine_line()}.  \nDate: {now}.  \nCommand: `python {shlex.join(command)}`\n"


def publish(text: str, out: str, command=None) -> None:
    """Prints ``text`` under the header and writes both to ``out`` (creating its folder)."""
    text = header(command) + "\n" + text
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    staging = f"{out}.tmp-{os.getpid()}"
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(staging, out)


def blas_line() -> str:
    """The BLAS NumPy calls (not SciPy's own copy), with its kernel and threads (threadpoolctl), for the
    NumPy benchmarks."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")]
    except ImportError:
        pools = []
    described = ", ".join(
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')} kernels, {p.get('num_threads')} threads)"
        for p in pools
    )
    return f"NumPy {np.__version__} on {described or 'an unknown BLAS'}"
