"""Identities of the sample corpus: the real faces in the photos that ship in registry packages.

Each photo is searched with dlib's HOG detector and the 68-point shape predictor (the offline
backend; see ENVIRONMENT.md). A photo contributes as many identities as it is known to show: the
largest face of a portrait (HOG has rare false positives on badges, e.g. the astronaut's mission
patch), every person of a group photo ordered left to right.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from lipforge import assets

# asset name -> how many people the photo shows (ids: the asset name, or <asset>_<i> left to right).
# sample_corpus.photos picks which of them the corpus uses.
PHOTOS: dict[str, int] = {
    "astronaut": 1,
    "grace_hopper": 1,
    "insightface_t1": 6,
    "face_recognition_obama": 1,
    "face_recognition_biden": 1,
    # the frontal faces HOG finds in each group photo (the others are turned away or looking down)
    "face_api_sample1": 3,
    "face_api_sample2": 1,
    "face_api_sample3": 3,
    "face_api_sample4": 3,
    "face_api_sample5": 5,
    "face_api_sample6": 4,
}
# HOG finds faces of 80+ px; larger photos are searched at this size (landmarks use the full photo)
_DETECT_MAX_SIDE = 1000


class FaceError(RuntimeError):
    """A photo did not show the faces it is known to show (changed asset or detector)."""


@dataclass(frozen=True)
class Identity:
    id: str
    asset: str
    box: tuple[int, int, int, int]  # x, y, width, height of the detection in the source photo
    landmarks: np.ndarray  # (68, 2) float32, iBUG-68 layout, source-photo pixels


@lru_cache(maxsize=1)
def _dlib_models():
    import dlib
    import face_recognition_models

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def load_photo(asset: str) -> np.ndarray:
    """The asset photo as RGB uint8."""
    path = assets.fetch(asset)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FaceError(f"{path} is not a readable image; delete it from the asset cache and rerun")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def detect_faces(rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float, np.ndarray]]:
    """All HOG detections of a photo as (box xywh, score, 68 landmarks), highest score first."""
    import dlib

    detector, predictor = _dlib_models()
    scale = min(1.0, _DETECT_MAX_SIDE / max(rgb.shape[:2]))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    rects, scores, _ = detector.run(small, 1, 0.0)
    found = []
    for r, score in zip(rects, scores):
        full = dlib.rectangle(int(round(r.left() / scale)), int(round(r.top() / scale)),
                              int(round(r.right() / scale)), int(round(r.bottom() / scale)))
        shape = predictor(rgb, full)
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        found.append(((full.left(), full.top(), full.width(), full.height()), float(score), pts))
    found.sort(key=lambda f: -f[1])
    return found


@lru_cache(maxsize=None)  # detection takes ~1 s a photo; every photo selection shares it
def identities_in_photo(asset: str, n_people: int) -> tuple[Identity, ...]:
    faces = detect_faces(load_photo(asset))
    if len(faces) < n_people:
        raise FaceError(f"{asset}: found {len(faces)} faces, expected {n_people}; the asset or dlib changed "
                        f"(check `lipforge.assets.provenance({asset!r})`)")
    if n_people == 1:
        box, _, pts = max(faces, key=lambda f: f[0][2] * f[0][3])
        return (Identity(asset, asset, box, pts),)
    people = sorted(faces[:n_people], key=lambda f: f[0][0] + f[0][2] / 2)
    return tuple(Identity(f"{asset}_{i}", asset, box, pts) for i, (box, _, pts) in enumerate(people))


def load_identities(photos: tuple[str, ...] | None = None) -> tuple[Identity, ...]:
    """Every identity of the given photos (default: all of PHOTOS), in a fixed order (PHOTOS order, then left to
    right), whatever the order of `photos`."""
    unknown = sorted(set(photos or ()) - set(PHOTOS))
    if unknown:
        raise FaceError(f"unknown photos {unknown}; known: {', '.join(PHOTOS)}")
    return tuple(ident for asset, n in PHOTOS.items() if photos is None or asset in photos
                 for ident in identities_in_photo(asset, n))


def identity_ids(photos: tuple[str, ...] | None = None) -> list[str]:
    return [i.id for i in load_identities(photos)]
