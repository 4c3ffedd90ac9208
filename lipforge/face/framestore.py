"""Per-clip storage of face crops with fast random access to short windows (Wav2Lip reads 5 frames).

One file per clip instead of a folder of loose JPEGs (millions of small files are slow on every
filesystem and on DVC):
- `raw`: a uint8 .npy (T, S, S, 3), memory-mapped on read: a window is a slice, no decoding.
- `jpeg`: one container file: magic, header (T, H, W, C as uint32), T+1 uint64 byte offsets, then the
  JPEG-encoded frames back to back; a window decodes only its own frames. ~10x smaller than raw.
`FrameStore.open` recognises the codec from the file's first bytes, not its name.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

CODECS = ("raw", "jpeg")
FRAMES_SUFFIX = {"raw": ".frames.npy", "jpeg": ".frames.jpgs"}
JPEG_MAGIC = b"LFJPEGS1"
NPY_MAGIC = b"\x93NUMPY"
_HEADER = np.dtype("<u4")
_OFFSET = np.dtype("<u8")


class FrameStoreError(RuntimeError):
    pass


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise FrameStoreError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def encode_jpeg_frames(frames: np.ndarray, quality: int) -> list[bytes]:
    # OpenCV's encoder assumes BGR; swapping keeps the chroma subsampling on the right channels.
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    out = []
    for frame in frames:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise FrameStoreError("JPEG encoding failed")
        out.append(buf.tobytes())
    return out


def write_frames(path: str | Path, frames: np.ndarray, codec: str = "raw", quality: int = 95) -> int:
    """Write RGB uint8 frames (T, H, W, 3) to one file; returns its size in bytes.

    Written to a temporary name and renamed, so a killed run never leaves a half-written store that
    a later run would mistake for a finished one.
    """
    if codec not in CODECS:
        raise FrameStoreError(f"unknown frame codec {codec!r}; choose one of {', '.join(CODECS)}")
    frames = _check_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        if codec == "raw":
            np.lib.format.write_array(f, np.ascontiguousarray(frames), allow_pickle=False)
        else:
            encoded = encode_jpeg_frames(frames, quality)
            offsets = np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(_OFFSET)
            f.write(JPEG_MAGIC)
            f.write(np.array(frames.shape, dtype=_HEADER).tobytes())
            f.write(offsets.tobytes())
            for blob in encoded:
                f.write(blob)
    tmp.replace(path)
    return path.stat().st_size


class FrameStore:
    """Read side. `FrameStore.open(path)`; `len(store)`; `store.read_window(start, n)` -> (n, H, W, 3)."""

    codec: str

    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def open(path: str | Path) -> "FrameStore":
        path = Path(path)
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as err:
            raise FrameStoreError(f"cannot open frame store {path}: {err}") from err
        if head.startswith(NPY_MAGIC):
            return RawFrameStore(path)
        if head == JPEG_MAGIC:
            return JpegFrameStore(path)
        raise FrameStoreError(f"{path} is neither a raw .npy nor a jpeg frame store; re-run the face_crop stage")

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def read_window(self, start: int, n: int = 5) -> np.ndarray:
        if start < 0 or n < 1 or start + n > len(self):
            raise IndexError(f"window [{start}, {start + n}) outside {len(self)} frames of {self.path}")
        return self._read(start, n)

    def read_all(self) -> np.ndarray:
        return self._read(0, len(self))

    def _read(self, start: int, n: int) -> np.ndarray:
        raise NotImplementedError

    # The memory map is opened lazily and not pickled, so a store can be handed to DataLoader workers
    # (each maps the file itself after the fork/spawn).
    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])


class RawFrameStore(FrameStore):
    codec = "raw"

    def __init__(self, path):
        super().__init__(path)
        self._array = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    @property
    def shape(self):
        return tuple(self.array.shape)

    def _read(self, start, n):
        return np.array(self.array[start:start + n])


class JpegFrameStore(FrameStore):
    codec = "jpeg"

    def __init__(self, path):
        super().__init__(path)
        self._buf = None
        self._shape = None
        self._offsets = None
        self._data_start = 0

    def _load(self) -> None:
        buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        shape = np.frombuffer(buf, dtype=_HEADER, count=4, offset=len(JPEG_MAGIC))
        t = int(shape[0])
        off_start = len(JPEG_MAGIC) + 4 * _HEADER.itemsize
        self._offsets = np.frombuffer(buf, dtype=_OFFSET, count=t + 1, offset=off_start)
        self._data_start = off_start + (t + 1) * _OFFSET.itemsize
        if self._data_start + int(self._offsets[-1]) != len(buf):
            raise FrameStoreError(f"{self.path} is truncated; delete it and re-run the face_crop stage")
        self._shape = tuple(int(v) for v in shape)
        self._buf = buf

    @property
    def shape(self):
        if self._buf is None:
            self._load()
        return self._shape

    def _read(self, start, n):
        if self._buf is None:
            self._load()
        out = np.empty((n,) + self._shape[1:], dtype=np.uint8)
        for i in range(n):
            a, b = (self._data_start + int(o) for o in self._offsets[start + i:start + i + 2])
            bgr = cv2.imdecode(np.asarray(self._buf[a:b]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FrameStoreError(f"frame {start + i} of {self.path} is not decodable JPEG")
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out[i])
        return out


def benchmark_frame_store(frames: np.ndarray, workdir: str | Path, quality: int = 95, n_reads: int = 500,
                          window: int = 5, seed: int = 0) -> dict:
    """Bytes per frame and mean time of random `window`-frame reads for each codec, on `frames`.

    Reads hit the page cache (the file was just written), i.e. the steady state of a training epoch
    whose data fits in RAM; a cold read adds the disk's latency.
    """
    frames = _check_frames(frames)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(frames) - window + 1, size=n_reads)
    results = {}
    for codec in CODECS:
        path = Path(workdir) / f"bench{FRAMES_SUFFIX[codec]}"
        t0 = time.perf_counter()
        size = write_frames(path, frames, codec, quality)
        write_s = time.perf_counter() - t0
        store = FrameStore.open(path)
        store.read_window(0, window)  # map the file before timing
        t0 = time.perf_counter()
        for s in starts:
            store.read_window(int(s), window)
        read_s = (time.perf_counter() - t0) / n_reads
        exact = bool(np.array_equal(store.read_all(), frames))
        psnr = None
        if not exact:
            mse = np.mean((store.read_all().astype(np.float64) - frames) ** 2)
            psnr = float(10 * np.log10(255.0 ** 2 / mse))
        results[codec] = {"bytes_per_frame": size / len(frames), "window_read_ms": read_s * 1e3,
                          "write_ms_per_frame": write_s * 1e3 / len(frames), "lossless": exact, "psnr_db": psnr}
        path.unlink()
    results["frame_shape"] = list(frames.shape[1:])
    results["window"] = window
    return results
