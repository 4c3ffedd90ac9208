"""The per-clip metadata file next to the frame store: boxes, crop boxes, landmarks, face mask, info.

Written as an uncompressed .npz with fixed zip timestamps, so equal inputs give byte-equal files
(np.savez stamps the current time into every member, which would change DVC's hash on every run).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from lipforge.face.crop import CroppedClip

META_SUFFIX = ".npz"
ARRAYS = ("detected_boxes", "boxes", "crop_boxes", "landmarks", "landmarks_crop", "face_found", "detect_frames")


def save_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def write_clip_meta(path: str | Path, clip: CroppedClip, info: dict) -> None:
    """`info` (JSON-able: n_frames, img_size, codec, backend, weights, ...) is stored as a JSON string."""
    arrays = {name: getattr(clip, name) for name in ARRAYS}
    arrays["info"] = np.array(json.dumps(info, sort_keys=True))
    save_npz_deterministic(path, arrays)


def read_clip_info(path: str | Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["info"]))


def read_clip_meta(path: str | Path) -> dict:
    """All arrays plus `info` (a dict)."""
    with np.load(path, allow_pickle=False) as z:
        out = {name: z[name] for name in ARRAYS}
        out["info"] = json.loads(str(z["info"]))
    return out
