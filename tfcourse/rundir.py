"""Run-folder layout and the one set of atomic writers and checked readers.

Every file tfcourse writes for a person or a later process goes through ``write_json``,
``write_text`` or ``write_npz`` (a temporary name in the same folder, then ``os.replace``),
so a kill leaves the old file or the new one, never half of one. ``read_json`` names the
file and the fix when a file is missing, empty or not JSON. Folders are built under a
hidden ``.NAME.partial-PID`` name and renamed when complete; ``stale_partials`` finds the
ones a killed process (``kill -9``) left behind so the next run can sweep them. One process at a
time: a new run folder is claimed under an ``flock`` (``claim_partial``), a search folder is held
with ``folder_lock``; both go with their process. ``check_writable_folder`` refuses an output or
export location that cannot be written before any work starts. (How a command answers a write the
machine refused is ``tfcourse.cli.cli_errors``.)

A floor-1 module: it imports nothing of tfcourse.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from typing import Any, Callable, Dict, List, Optional

import numpy as np

# A run folder's files (tfcourse.jobs.image_run writes them; artifacts, report and benchmarks read them).
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
    sweep_stale_locks(parent)
    return os.path.join(parent, f".{name}.partial-{os.getpid()}")


def missing_folders(path: str) -> List[str]:
    """``path`` and those of its parent folders that do not exist yet, deepest first (what a command that
    makes ``path`` may remove again, if empty, when it fails)."""
    made, probe = [], os.path.abspath(path)
    while not os.path.exists(probe):
        made.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return made


_CLAIMS: dict = {}  # a claimed partial folder -> (its final name, the lock's open file, the parents made)


def claim_partial(final: str) -> str:
    """Claims the new folder ``final`` for this process: returns the hidden ``.NAME.partial-PID`` folder
    (made) to build it in, holding the folder's lock (``_acquire_lock``) until ``publish_new_folder`` or
    ``abandon_partial``.

    Two processes started on the same ``final`` (two ``train`` runs with one ``--output-dir``) would both
    build it and the second would lose its finished work at the rename: the lock refuses the later one at
    once, with the holder's process id.

    Raises:
        ValueError: Another process is building ``final``, or ``final`` exists already.
    """
    handle, made = _lock_beside(final, "pass another --output-dir, or wait until it has finished.")
    staging = prepare_partial(final)
    if os.path.exists(final):  # published by another process between the caller's look and this lock
        _release_lock(final, handle)
        remove_empty_folders(made)
        raise ValueError(f"{final} exists already; pass another --output-dir or remove it.")
    os.makedirs(staging)
    _CLAIMS[staging] = (final, handle, made)
    return staging


def abandon_partial(staging: str) -> None:
    """Removes a ``claim_partial`` folder of work that failed, releases its claim, and removes the parent
    folders the claim made if they are empty now: a refused run leaves nothing behind."""
    shutil.rmtree(staging, ignore_errors=True)
    final, handle, made = _CLAIMS.pop(staging, (None, None, []))
    if handle is not None:
        _release_lock(final, handle)
    remove_empty_folders(made)


def publish_new_folder(partial: str, final: str) -> str:
    """Renames the complete folder ``partial`` to ``final`` and releases its claim; if something took
    ``final`` meanwhile (a program that does not take the lock), to the first free ``final-2``, ``final-3``,
    ... instead, so finished work is never thrown away.

    Returns:
        The folder's name now.
    """
    candidate, number = final, 2
    while True:
        if not os.path.exists(candidate):
            try:
                os.rename(partial, candidate)
                break
            except OSError as error:  # taken between the look and the rename
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                    raise
        candidate, number = f"{final}-{number}", number + 1
    claimed, handle, _ = _CLAIMS.pop(partial, (None, None, []))
    if handle is not None:
        _release_lock(claimed, handle)
    return candidate


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


@contextlib.contextmanager
def staged_folder(final: str):
    """Builds the folder ``final`` under its hidden partial name (``prepare_partial``, made here) and, when
    the block ends, publishes it whole (``publish_folder``: an earlier one is replaced); if the block
    fails, or is interrupted, the partial folder is removed and nothing is published."""
    partial = prepare_partial(final)
    os.makedirs(partial)
    try:
        yield partial
        publish_folder(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


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


def _lock_path(folder: str) -> str:
    parent, name = os.path.split(os.path.abspath(folder))
    return os.path.join(parent, f".{name}.lock")


def _acquire_lock(folder: str, busy: str) -> int:
    """An exclusive ``flock`` on ``folder``'s hidden ``.NAME.lock`` beside it (made if missing), holding
    this process's id; returns the open file. A lock taken on a file its holder removed meanwhile is taken
    again on the new one.

    Raises:
        ValueError: Another process holds the lock: names it by process id, with ``busy`` (what to do).
    """
    lock_path = _lock_path(folder)
    while True:
        handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(handle)
            raise ValueError(f"{folder} is in use by another process (PID {holder}); {busy}") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock_path).st_ino == os.fstat(handle).st_ino:
                break
        os.close(handle)  # the holder removed the file as we opened it: lock the new one
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n".encode("ascii"))
    return handle


def sweep_stale_locks(parent: str) -> List[str]:
    """Removes the ``.NAME.lock`` files in ``parent`` no process holds (a holder killed with ``kill -9``
    leaves its file, though never its lock) and returns them."""
    swept = []
    for entry in sorted(os.listdir(parent)) if os.path.isdir(parent) else []:
        if not (entry.startswith(".") and entry.endswith(".lock")):
            continue
        path = os.path.join(parent, entry)
        try:
            handle = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(handle).st_ino:
                os.remove(path)  # while holding it: a process opening it now takes it again anew
                swept.append(path)
        except (BlockingIOError, FileNotFoundError):
            pass  # held: a live process works there
        finally:
            os.close(handle)
    return swept


def _release_lock(folder: str, handle: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(_lock_path(folder))
    os.close(handle)


def _lock_beside(folder: str, busy: str):
    """Makes ``folder``'s parent if missing and takes ``folder``'s lock (``_acquire_lock``); returns the lock's
    open file and the folders made, which are removed again (if empty) when the lock is refused."""
    parent = os.path.dirname(os.path.abspath(folder))
    made = missing_folders(parent)
    os.makedirs(parent, exist_ok=True)
    try:
        return _acquire_lock(folder, busy), made
    except BaseException:
        remove_empty_folders(made)
        raise


@contextlib.contextmanager
def folder_lock(folder: str, busy: str):
    """Within the block this process alone works in ``folder`` (a search folder): an exclusive ``flock`` on a
    hidden ``.NAME.lock`` file beside it, holding the holder's process id.

    The lock goes with the process (``kill -9`` included), so it is never left stale; the file is removed on
    release. Folders made for the lock file are removed again if empty.

    Raises:
        ValueError: Another process holds the lock: names it by process id, with ``busy`` (what to do).
    """
    handle, made = _lock_beside(folder, busy)
    try:
        yield
    finally:
        _release_lock(folder, handle)
        remove_empty_folders(made)


def remove_empty_folders(folders: List[str]) -> None:
    """Removes each of ``folders`` (deepest first) that is empty; the others stay."""
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # only if empty


def export_of_run(run_dir: str, export_root: str, write: Callable[[], Any]) -> Any:
    """Runs ``write()`` (an export of the finished run folder ``run_dir``; its result, or a tuple whose first
    item, is the export's folder) and records that folder in the run's ``export.json``.

    Raises:
        ValueError: If the export fails (disk full, permissions, a failed check): the run folder stays
            complete, and the message says how to export it again.
    """
    try:
        result = write()
    except Exception as error:  # noqa: BLE001  (disk full, permissions, a failed check: the run is kept)
        raise ValueError(
            f"The export failed ({type(error).__name__}: {str(error).strip()[:500]}). The run folder "
            f"{run_dir} is complete; export it again with: python -m tfcourse.export {run_dir} "
            f"--export-dir {export_root}"
        ) from error
    export_dir = result[0] if isinstance(result, tuple) else result
    write_json(os.path.join(run_dir, EXPORT_FILE), {"export_dir": os.path.abspath(export_dir)})
    return result


def is_table_run(run_dir: str) -> bool:
    """A run folder written by ``jobs.table_run.train_table`` (its ``config.json`` lists the table's columns)."""
    try:
        with open(os.path.join(run_dir, CONFIG_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "columns" in record.get("data", {})


# An export's layout: saved_models/<name>/<version>/ (TensorFlow Serving's), its signatures and tfcourse's
# record in assets.extra/, read by the export's writer (tfcourse.serving) and by whoever opens an export.
SIGNATURE_FLOAT = "serving_default"
SIGNATURE_UINT8 = "serving_uint8"
METADATA_FILE = os.path.join("assets.extra", "tfcourse.json")


def version_numbers(model_dir: str) -> list:
    """The integer-named entries under an export's model folder, ascending by number (10 after 9); none for a
    folder that does not exist."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if re.fullmatch(r"\d+", name))


def next_version(model_dir: str) -> int:
    """The next free integer version under ``model_dir`` (1 for an empty or new folder)."""
    return max(version_numbers(model_dir), default=0) + 1


def read_metadata(export_dir: str) -> Dict[str, Any]:
    """An export's ``assets.extra/tfcourse.json`` (``{}`` when it has none)."""
    return read_json(os.path.join(export_dir, METADATA_FILE), "export metadata", missing={})


def load_class_names(export_dir: str):
    """Class names of an export, read from its ``assets/class_names.txt``."""
    with open(os.path.join(export_dir, "assets", "class_names.txt"), encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


# Run in a separate interpreter that imports nothing but TensorFlow, as a model server would.
