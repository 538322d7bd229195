"""Each frame's crop stored once: one HDF5 file per video of prepared data, windows read frame ranges from it.

    frames/<video_id>.h5   dataset "crops": uint8 [N, S, S, 3] RGB, row i = frame i of the video (zeros where
                           the animal was missed: no window covers such a frame); chunks of CHUNK_FRAMES frames,
                           deflated at NPZ_COMPRESSLEVEL, so a window reads and inflates only the chunks it covers.

Overlapping windows share frames: at window 30 and stride 5 every frame used to be stored six times, once per
window file (bench/README.md, Prepared data). Written while the video streams (memory flat in its length) and
renamed into place when complete, so a stopped run never leaves a store that looks whole.
"""
import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from utils.errors import UserError
from utils.io import DISK_ERRNOS, NPZ_COMPRESSLEVEL, disk_error

CHUNK_FRAMES = 4  # frames per compressed chunk: a 30-frame window inflates 8-9 chunks (32-36 frames)
# inflated chunks kept per open store (HDF5's own cache is 1 MB): overlapping windows read the same chunks again
# (window 30, stride 5: six windows share each frame), so a cache saves inflating them again; bench/README.md,
# "Prepared data", measures the epochs
CACHE_BYTES = 16 << 20
HEADROOM_BYTES = 32 << 20  # free space kept while writing: HDF5 cannot survive a write that fills the disk
DATASET = "crops"


class CropStoreWriter:
    """Crops appended in frame order (put(index, crop)); frames never put are zeros. close() renames the finished
    file into place; abort() removes the partial one."""

    def __init__(self, path, crop_size: int):
        self.path, self.size = Path(path), crop_size
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.file = h5py.File(self.tmp, "w")
        except OSError as exc:  # a read-only folder (a full one is caught before each write: _check_space)
            raise disk_error(self.path.parent, exc if exc.errno else OSError(errno.EACCES, str(exc))) from None
        shape = (0, crop_size, crop_size, 3)
        self.crops = self.file.create_dataset(DATASET, shape, np.uint8, maxshape=(None, *shape[1:]),
                                              chunks=(CHUNK_FRAMES, *shape[1:]), compression="gzip",
                                              compression_opts=NPZ_COMPRESSLEVEL)
        self.pending, self.first = [], 0  # crops not yet written, starting at frame `first`
        self.closing = False

    def put(self, index: int, crop) -> None:
        """The crop of frame `index` (RGB uint8 [S, S, 3], or None for a missed frame); indices increase."""
        expected = self.first + len(self.pending)
        if index < expected:
            raise ValueError(f"crop store {self.path}: frame {index} after frame {expected - 1}")
        self.pending += [None] * (index - expected) + [crop]
        if len(self.pending) >= CHUNK_FRAMES * 4:
            with self._aborted_on_disk_error():
                self._flush()

    def _check_space(self, block_bytes: int) -> None:
        """Stop before the disk fills: HDF5 cannot recover a file whose write failed (its cleanup at exit crashes
        the interpreter), so a block is written only while HEADROOM_BYTES more than it are free."""
        if shutil.disk_usage(self.path.parent).free < block_bytes + HEADROOM_BYTES:
            self.abort()
            raise disk_error(self.path.parent, OSError(errno.ENOSPC, "No space left on device"))

    @contextmanager
    def _aborted_on_disk_error(self):
        """HDF5 reports a full or read-only disk as OSError (errno set): the partial file is removed and the run
        stops with one line (utils.io.disk_error); a file left half-closed would crash the interpreter at exit."""
        try:
            yield
        except OSError as exc:
            self.abort()
            if exc.errno in DISK_ERRNOS:
                raise disk_error(self.path.parent, exc) from None
            raise

    def _flush(self) -> None:
        if not self.pending:
            return
        self._check_space(len(self.pending) * self.size * self.size * 3)
        block = np.zeros((len(self.pending), self.size, self.size, 3), np.uint8)
        for i, crop in enumerate(self.pending):
            if crop is not None:
                block[i] = crop
        self.crops.resize(self.first + len(block), axis=0)
        self.crops[self.first:] = block
        self.first, self.pending = self.first + len(block), []

    def close(self) -> None:
        with self._aborted_on_disk_error():
            self._flush()
            self.closing = True
            self.file.close()
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if not self.closing:  # HDF5 crashes the process when a file whose close failed is closed again
            try:
                self.file.close()
            except OSError:  # closing flushes: on a full disk that fails again; the file is removed anyway
                pass
        self.tmp.unlink(missing_ok=True)


class CropStoreReader:
    """Frame ranges of one store. The file is opened on first use in each process (a DataLoader worker gets its own
    handle: HDF5 handles must not cross a fork)."""

    def __init__(self, path):
        self.path, self._file, self._pid = Path(path), None, None

    def _crops(self):
        if self._file is None or self._pid != os.getpid():
            try:
                self._file, self._pid = h5py.File(self.path, "r", rdcc_nbytes=CACHE_BYTES), os.getpid()
            except OSError as exc:
                raise UserError(f"cannot read the crop store {self.path} ({exc}); re-run preprocessing") from None
        return self._file[DATASET]

    def frames(self, first: int, last: int) -> np.ndarray:
        """RGB uint8 [T, S, S, 3] of frames first..last (inclusive)."""
        crops = self._crops()
        if last >= len(crops):
            raise UserError(f"{self.path} holds {len(crops)} frames, a window needs frame {last}; re-run "
                            f"preprocessing")
        return crops[first:last + 1]

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):  # pickled into DataLoader workers: without the open handle
        return {"path": self.path, "_file": None, "_pid": None}
