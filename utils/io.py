"""Atomic file writes: a temp file in the destination folder, then os.replace, so no reader ever sees half a file;
and output sets (output_set): a run's files staged together and published together, so a failure (a full disk, a
read-only folder, Ctrl-C) leaves the previous complete set, never a mix of two runs."""
import errno
import json
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from utils.errors import DiskError, UserError


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask can only set it)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_dir(path, what: str = "output folder") -> Path:
    """Create the folder (and parents); a UserError naming it when it is a file or cannot be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is an existing file, not a folder; pass a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {path}: {exc.strerror}; pass a folder you can write to") from None
    return path


# a folder that cannot take the files: full (ENOSPC, EDQUOT) or not writable (EROFS, EACCES, EPERM)
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
STAGING_PREFIX = ".staging-"


def disk_error(folder, exc: OSError, needed: int = 0) -> DiskError:
    """One line for a folder that cannot take the files: which folder, why, the space free and needed, the fix.
    `needed`: bytes of a partial file about to be removed (free once it is)."""
    folder, staged, kept = Path(folder), 0, "nothing half-written is left"
    if folder.name.startswith(STAGING_PREFIX):  # its files are removed with it: they count as free, and as needed
        staged, kept = folder_bytes(folder), "earlier outputs there are untouched"
        folder = folder.parent
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
        free, needed = shutil.disk_usage(existing).free + max(needed, staged), max(needed, staged)
        need = f"; this run had written {human_bytes(needed)} when it ran out" if needed else ""
        return DiskError(f"no space left in {folder} ({human_bytes(free)} free{need}); {kept}: free some space or "
                         f"write elsewhere (--output_dir)")
    return DiskError(f"cannot write in {folder}: {exc.strerror} (a read-only disk or a folder that is not yours); "
                     f"{kept}: pass a folder you can write to (--output_dir)")


def human_bytes(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


@contextmanager
def output_set(folder):
    """Yield a staging folder inside `folder`; when the block succeeds its files replace their namesakes in
    `folder` (renames on one disk: a moment), otherwise they are removed and `folder` is as it was. A full or
    read-only folder is a UserError naming it (disk_error)."""
    folder = ensure_dir(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    except OSError as exc:
        raise disk_error(folder, exc) from None
    try:
        yield staging
        for name in sorted(os.listdir(staging)):
            os.replace(staging / name, folder / name)
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise disk_error(staging, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def atomic_path(path):
    """Yield a temp path beside `path` (same suffix); on success it replaces `path`, on error it is removed.
    The file gets the permissions of any file the user creates (0666 less the umask): mkstemp's 0600 would
    hide results from lab-mates sharing the folder."""
    path = Path(path)
    ensure_dir(path.parent)
    if path.is_dir():
        raise UserError(f"{path} is a folder; cannot write a file there")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    except OSError as exc:
        raise disk_error(path.parent, exc) from None
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise disk_error(path.parent, exc, os.path.getsize(tmp) if os.path.exists(tmp) else 0) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def report_json(results: dict, path=None) -> dict:
    """A bench's results: printed, and written to `path` (atomically) when one is given."""
    print(json.dumps(results, indent=2))
    if path:
        atomic_write_json(path, results)
    return results


NPZ_COMPRESSLEVEL = 1  # bench/bench_npz.py: 3.9-4.4x faster than numpy's default level 6, files 4-5% larger


def atomic_save_npz(path, **arrays) -> None:
    """A compressed .npz (what np.savez_compressed writes, read by np.load), deflated at NPZ_COMPRESSLEVEL,
    atomically."""
    with atomic_path(path) as tmp:
        write_npz(tmp, arrays, NPZ_COMPRESSLEVEL)


def write_npz(path, arrays: dict, level: int) -> None:
    """An .npz at a given deflate level (0 = stored), one .npy member per array, no pickled objects."""
    method = zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method, compresslevel=level or None) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def atomic_write_csv(path, frame) -> None:
    """A pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


EXCEL_MAX_ROWS = 1_048_576  # rows per worksheet, header included


def atomic_write_xlsx(path, sheets: dict, chunk_rows: int = 20_000) -> None:
    """DataFrames as worksheets, streamed (openpyxl write-only: memory does not grow with the rows), atomically.
    NaN becomes an empty cell. A table longer than a worksheet continues on `<name>_2`, `<name>_3`, ..."""
    from openpyxl import Workbook
    with atomic_path(path) as tmp:
        book = Workbook(write_only=True)
        for name, frame in sheets.items():
            per_sheet = EXCEL_MAX_ROWS - 1
            for part, first in enumerate(range(0, max(len(frame), 1), per_sheet)):
                sheet = book.create_sheet(name if part == 0 else f"{name}_{part + 1}")
                sheet.append([str(c) for c in frame.columns])
                for chunk_start in range(first, min(first + per_sheet, len(frame)), chunk_rows):
                    chunk = frame.iloc[chunk_start:min(chunk_start + chunk_rows, first + per_sheet, len(frame))]
                    for row in chunk.astype(object).where(chunk.notna(), None).itertuples(index=False, name=None):
                        sheet.append(row)
        book.save(tmp)
