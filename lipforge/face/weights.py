"""Where the face models' weight files live, and their sha256 for provenance.

Hashing the 100 MB dlib .dat takes ~0.3 s, and every stage run and every Ray worker wants it, so
hashes are cached in-process and on disk, keyed by (path, size, mtime): an edited file is re-hashed.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from lipforge.hashing import file_sha256

FACE_ALIGNMENT_FILES = ("s3fd-619a316812.pth", "2DFAN4-11f355bf06.pth.tar")
DLIB_LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"


def hash_cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "lipforge" / "weight_sha256.json"


def face_alignment_dir() -> Path:
    """The folder face-alignment downloads into (and reads from): torch.hub.get_dir()/checkpoints."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def face_alignment_paths() -> list[Path]:
    return [face_alignment_dir() / name for name in FACE_ALIGNMENT_FILES]


def dlib_landmarks_path() -> Path | None:
    """The 68-point predictor shipped by face-recognition-models(-ng); None when it is not installed."""
    try:
        import face_recognition_models
    except ImportError:
        return None
    path = Path(face_recognition_models.pose_predictor_model_location())
    return path if path.exists() else None


@lru_cache(maxsize=None)
def _sha256_for(path: str, size: int, mtime_ns: int) -> str:
    cache_file = hash_cache_path()
    key = f"{path}|{size}|{mtime_ns}"
    try:
        cached = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cached = {}
    if key in cached:
        return cached[key]
    digest = file_sha256(path)
    cached[key] = digest
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only home only costs re-hashing next time
    return digest


def weight_sha256(path: str | Path) -> str:
    path = Path(path).resolve()
    st = path.stat()
    return _sha256_for(str(path), st.st_size, st.st_mtime_ns)


def describe_weights(paths: list[Path]) -> list[dict]:
    """[{file, sha256}] for the provenance of a run (file name only: absolute paths differ per machine)."""
    return [{"file": p.name, "sha256": weight_sha256(p)} for p in paths]
