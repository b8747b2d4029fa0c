"""Run-folder layout and the one set of atomic writers and checked readers.

Every file tfcourse writes for a person or a later process goes through ``write_json``,
``write_text`` or ``write_npz`` (a temporary name in the same folder, then ``os.replace``),
so a kill leaves the old file or the new one, never half of one. ``read_json`` names the
file and the fix when a file is missing, empty or not JSON. Folders are built under a
hidden ``.NAME.partial-PID`` name and renamed when complete; ``stale_partials`` finds the
ones a killed process (``kill -9``) left behind so the next run can sweep them.
``check_writable_folder`` refuses an output or export location that cannot be written
before any work starts.

A floor-1 module: it imports nothing of tfcourse.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
from typing import Any, Callable, List, Optional

import numpy as np

# A run folder's files (tfcourse.runs writes them; artifacts, report and benchmarks read them).
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
COST_JSON = "cost.json"
COST_MD = "cost.md"
PREDICTIONS_FILE = "predictions.npz"
REPORT_TEXT_FILE = "report.txt"
EXPORT_FILE = "export.json"  # where the run was exported
REPORT_HTML, REPORT_MD = "report.html", "report.md"  # a run's report (image or table run)
PARTIAL_PATTERN = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")


def model_file(path: str) -> Optional[str]:
    """The saved model behind ``path``: a run folder's ``model.keras``, or ``path`` itself if it is a file.

    Returns ``None`` when there is no such file.
    """
    candidate = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
    return candidate if os.path.isfile(candidate) else None


def safe_name(text: str) -> str:
    """``text``'s last path part as a folder-name piece: runs of other characters than letters, digits,
    ``_``, ``.`` and ``-`` become one ``_`` (``tfds:cifar10`` -> ``tfds_cifar10``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(os.path.normpath(text)))


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Not JSON serialisable: {type(value).__name__}")


def write_json(path: str, payload: Any) -> None:
    """Writes JSON atomically."""
    text = json.dumps(payload, indent=2, default=_json_default) + "\n"
    write_text(path, text)


def atomic_write(path: str, write: Callable[[str], Any], suffix: str = "") -> None:
    """The one atomic writer: ``write(staging)`` fills a temporary file beside ``path``, then
    ``os.replace`` puts it in place; on any failure the temporary file is removed. ``suffix``
    ends the temporary name for writers that insist on an extension (NumPy's ``.npz``, matplotlib's ``.png``)."""
    staging = f"{path}.tmp-{os.getpid()}{suffix}"
    try:
        write(staging)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise


def write_text(path: str, text: str) -> None:
    """Writes text atomically."""

    def write(staging: str) -> None:
        with open(staging, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write)


def write_bytes(path: str, payload: bytes) -> None:
    """Writes bytes atomically."""

    def write(staging: str) -> None:
        with open(staging, "wb") as handle:
            handle.write(payload)

    atomic_write(path, write)


def write_npz(path: str, **arrays) -> None:
    """Writes a compressed ``.npz`` atomically."""
    atomic_write(path, lambda staging: np.savez_compressed(staging, **arrays), suffix=".npz")


_REQUIRED = object()


def read_json(path: str, what: str = "file", fix: str = "", missing: Any = _REQUIRED) -> Any:
    """Reads a JSON file, or raises ``ValueError`` naming the file, what is wrong and ``fix``.

    Args:
        path: The file.
        what: What the file is, for the message (e.g. "run configuration").
        fix: What to do about it (appended to the message).
        missing: Returned when the file does not exist (default: that is an error too).
    """
    tail = f" {fix}" if fix else ""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if missing is not _REQUIRED:
            return missing
        raise ValueError(f"{path}: {what} not found.{tail}") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the {what} ({error.strerror}).{tail}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the {what} is not UTF-8 text (corrupt?).{tail}") from None
    if not text.strip():
        raise ValueError(f"{path}: the {what} is empty (a write was interrupted?).{tail}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the {what} is not valid JSON ({error}; a write was interrupted?).{tail}") from None


def check_writable_folder(path: str, flag: str) -> None:
    """Refuses a folder tfcourse is about to create or write into when that cannot work.

    The folder itself need not exist; the nearest existing ancestor must be a folder we may
    write to, and nothing on the way may be a file.

    Args:
        path: The folder (e.g. an export root or the parent of a run folder).
        flag: The command-line flag that named it, for the message.

    Raises:
        ValueError: If ``path`` or an ancestor is a file, or the nearest existing folder is
            not writable.
    """
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise ValueError(f"{flag} {path}: {probe} is a file, not a folder; pass a folder path.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(
            f"{flag} {path}: cannot write into {probe} (permission denied or read-only); "
            "pass a folder you can write to."
        )


def prepare_partial(final: str) -> str:
    """The hidden ``.NAME.partial-PID`` path this process builds ``final`` under (not yet made), after
    making the parent folder and sweeping the partials killed processes left there."""
    parent, name = os.path.split(os.path.abspath(final))
    os.makedirs(parent, exist_ok=True)
    sweep_stale_partials(parent)
    return os.path.join(parent, f".{name}.partial-{os.getpid()}")


def publish_folder(partial: str, final: str) -> None:
    """Renames the complete folder ``partial`` to ``final``. A folder already at ``final`` (an earlier
    result of the same command) is moved aside first and removed only once the new one is in place;
    if the rename fails it is put back. Only a kill in the instant between the two renames leaves
    ``final`` missing, with the earlier result whole under ``.NAME.replaced-PID`` beside it."""
    if not os.path.isdir(final):
        os.replace(partial, final)
        return
    parent, name = os.path.split(os.path.abspath(final))
    aside = os.path.join(parent, f".{name}.replaced-{os.getpid()}")
    os.replace(final, aside)
    try:
        os.replace(partial, final)
    except BaseException:
        os.replace(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_partials(parent: str, pattern: re.Pattern = PARTIAL_PATTERN) -> List[str]:
    """Hidden folders in ``parent`` named after a process that is gone (killed with ``kill -9``):
    ``.NAME.partial-PID`` run folders, or whatever ``pattern`` (with a ``pid`` group) matches."""
    if not os.path.isdir(parent):
        return []
    found = []
    for name in sorted(os.listdir(parent)):
        match = pattern.match(name)
        if match and int(match["pid"]) != os.getpid() and not process_alive(int(match["pid"])):
            found.append(os.path.join(parent, name))
    return found


def sweep_stale_partials(parent: str, pattern: re.Pattern = PARTIAL_PATTERN) -> List[str]:
    """Removes the folders ``stale_partials`` finds and returns them (they never held finished work:
    a run folder gets its real name, an export its version, only when complete)."""
    swept = []
    for path in stale_partials(parent, pattern):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            swept.append(path)
    return swept


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program stands so it unwinds exactly like Ctrl-C."""


@contextlib.contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM (``kill``, a scheduler stopping a job) raises ``Terminated``, so every
    ``except BaseException`` / ``finally`` that removes a half-written folder runs, as for Ctrl-C.
    The previous handler is restored afterwards (a CLI called from a test leaves no trace)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received = []

    def handler(signum, frame):
        received.append(signum)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except Exception as error:
        # raised inside TensorFlow's C code, the handler's exception can come out as another one
        # (CPython: ``SystemError: bad argument to internal function``); it was still SIGTERM
        if received:
            raise Terminated() from error
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_exit(parser, error: KeyboardInterrupt) -> None:
    """Exit status 143 for SIGTERM and 130 for Ctrl-C, as a shell reports them, with one line saying so."""
    terminated = isinstance(error, Terminated)
    parser.exit(
        143 if terminated else 130,
        f"{parser.prog}: {'terminated (SIGTERM)' if terminated else 'interrupted'}"
        "; unfinished output was removed, finished work is kept\n",
    )


@contextlib.contextmanager
def cli_errors(parser):
    """The body of a CLI's ``main``: SIGTERM unwinds like Ctrl-C (``sigterm_unwinds``), a
    ``ValueError`` exits with status 2 and its message, Ctrl-C and SIGTERM exit 130 / 143."""
    try:
        with sigterm_unwinds():
            yield
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt as error:
        interrupted_exit(parser, error)


def is_table_run(run_dir: str) -> bool:
    """A run folder written by ``table_runs.train_table`` (its ``config.json`` lists the table's columns)."""
    try:
        with open(os.path.join(run_dir, CONFIG_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "columns" in record.get("data", {})
