"""FFHQ face alignment: the oriented square that FFHQ cuts around a face, and the warp into it.

The procedure is FFHQ's own (NVlabs ffhq-dataset, `recreate_aligned_images`): from the eye
centres and mouth corners of dlib's 68 landmarks it builds an oriented square (the quad),
shrinks a photo much larger than the output, crops it to the quad plus a border, pads it by
reflection with a blurred, median-faded edge where the quad leaves the photo, warps the quad
to a square 4x the output size (bilinear) and resizes that to the output (Lanczos).

Coordinates are (x, y) pixels with pixel centres at integers, as dlib reports landmarks; a
quad lists its corners in PIL's QUAD order: the ones that become the crop's top-left,
bottom-left, bottom-right and top-right outer corners.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.ndimage
from PIL import Image

from alae.faces.landmarks import (
    EYE_LEFT,
    EYE_RIGHT,
    LANDMARK_COUNT,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    AlignmentError,
    Face,
    FaceLandmarker,
)

# FFHQ's constants (recreate_aligned_images).
EYE_SPAN = 2.0  # the quad's half side is at least 2x the eye-to-eye distance ...
MOUTH_SPAN = 1.8  # ... and at least 1.8x the eye-to-mouth distance
CENTRE_SHIFT = 0.1  # the quad's centre: eye midpoint + 0.1 x (eye midpoint -> mouth midpoint)
BORDER_FRACTION, MIN_BORDER = 0.1, 3  # crop border: max(rint(0.1 x side), 3) pixels
PAD_FRACTION = 0.3  # once padding is needed, every side is padded by at least 0.3 x side
BLUR_FRACTION = 0.02  # sigma of the blur that fades into the padding, x side
TRANSFORM_OVERSAMPLING = 4  # the quad is warped to 4x the output size (FFHQ: 4096 for 1024)


@dataclass(frozen=True)
class AlignedFace:
    """One face cut out as FFHQ does.

    image: PIL RGB, output_size x output_size. quad: float64 [4, 2], the source-photo corners
    that became the crop's corners (PIL QUAD order; see `source_to_crop`). landmarks: float64
    [68, 2] in the source photo. eyes: float64 [2, 2], the left and right eye centres in the
    source photo. face: the detection, when the face came from `align_photo`.
    """

    image: Image.Image
    quad: np.ndarray
    landmarks: np.ndarray
    eyes: np.ndarray
    face: Face | None = None


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """[68, 2] landmarks -> float64 [2, 2]: mean of points 36-41 (left in the image), of 42-47."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return np.stack([landmarks[EYE_LEFT].mean(axis=0), landmarks[EYE_RIGHT].mean(axis=0)])


def face_quad(landmarks: np.ndarray) -> np.ndarray:
    """FFHQ's oriented square for [68, 2] landmarks -> float64 [4, 2] corners (PIL QUAD order).

    Its x axis runs from the left eye to the right one, tilted by the eye-to-mouth direction;
    its half side is max(2 x eye distance, 1.8 x eye-to-mouth distance); its centre is 10% of
    the way from the eye midpoint to the mouth midpoint.
    """
    landmarks = _checked_landmarks(landmarks)
    eye_left, eye_right = eye_centres(landmarks)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (landmarks[MOUTH_LEFT] + landmarks[MOUTH_RIGHT]) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    length = np.hypot(*x)
    if not length > 0:
        raise AlignmentError("degenerate landmarks: the eyes and mouth give no orientation")
    x *= max(np.hypot(*eye_to_eye) * EYE_SPAN, np.hypot(*eye_to_mouth) * MOUTH_SPAN) / length
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * CENTRE_SHIFT
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def source_to_crop(points: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Where source-photo points [N, 2] land in the size x size crop of `quad` [4, 2].

    Both sides use pixel-centre coordinates, so quad corners 0, 1, 2, 3 land on the crop's
    outer corners (-0.5, -0.5), (-0.5, size - 0.5), (size - 0.5, size - 0.5),
    (size - 0.5, -0.5) — PIL QUAD's (0, 0), (0, S), (S, S), (S, 0) in its pixel-edge
    convention. FFHQ quads are parallelograms, for which PIL's bilinear map is affine; any
    other quad is refused.
    """
    quad = np.asarray(quad, dtype=np.float64)
    across, down = quad[3] - quad[0], quad[1] - quad[0]
    if not np.allclose(quad[2], quad[1] + across, atol=1e-6 * np.hypot(*across)):
        raise ValueError("source_to_crop needs a parallelogram quad (corner 2 = corner 1 + corner 3 - corner 0)")
    fractions = np.linalg.solve(np.stack([across, down], axis=1), (np.asarray(points, np.float64) - quad[0]).T).T
    return fractions * size - 0.5


def align_face(image: Image.Image, landmarks: np.ndarray, output_size: int = 1024) -> AlignedFace:
    """Cut the face with [68, 2] `landmarks` out of `image` as FFHQ does, at output_size²."""
    if output_size < 1:
        raise ValueError(f"output_size must be positive, got {output_size}")
    landmarks = _checked_landmarks(landmarks)
    quad = face_quad(landmarks)
    image = image if image.mode == "RGB" else image.convert("RGB")
    work, quad, scale = _shrink(image, quad, output_size)
    work, quad, crop_origin = _crop(work, quad)
    work, quad, pad_origin = _pad(work, quad)
    warped = work.transform((TRANSFORM_OVERSAMPLING * output_size,) * 2, Image.Transform.QUAD,
                            tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR)
    warped = warped.resize((output_size, output_size), Image.Resampling.LANCZOS)
    # The quad the warp used, back in the source photo: undo the padding, the crop, then the
    # shrink (PIL's resize maps pixel edges to pixel edges, so centres shift by half a pixel).
    source_quad = (quad - pad_origin + crop_origin + 0.5) * scale - 0.5
    return AlignedFace(image=warped, quad=source_quad, landmarks=landmarks, eyes=eye_centres(landmarks))


def align_photo(image: Image.Image, landmarker: FaceLandmarker, output_size: int = 1024) -> list[AlignedFace]:
    """Every face `landmarker` finds in `image`, aligned, left to right (see `align_face`)."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    return [replace(align_face(image, face.landmarks, output_size), face=face)
            for face in landmarker.detect(np.asarray(image))]


def _checked_landmarks(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (LANDMARK_COUNT, 2) or not np.isfinite(landmarks).all():
        raise AlignmentError(f"expected {LANDMARK_COUNT} finite (x, y) landmarks, got an array of shape {landmarks.shape}")
    return landmarks


def _side(quad: np.ndarray) -> float:
    """The side length of a (square) quad, FFHQ's `qsize`."""
    return float(np.hypot(*(quad[3] - quad[0])))


def _shrink(image: Image.Image, quad: np.ndarray, output_size: int) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Downscale by an integer factor while the quad stays at least 2x the output size.

    Returns the image, the quad in its pixels and the per-axis scale [2] of a source pixel edge
    coordinate over a shrunk one (1 when not shrunk).
    """
    shrink = int(np.floor(_side(quad) / output_size * 0.5))
    if shrink <= 1:
        return image, quad, np.ones(2)
    size = np.array(image.size)
    shrunk = np.rint(size / shrink).astype(int)
    return image.resize(tuple(shrunk), Image.Resampling.LANCZOS), quad / shrink, size / shrunk


def _crop(image: Image.Image, quad: np.ndarray) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Crop to the quad's bounding box plus a border; returns the image, quad and crop origin [2]."""
    border = _border(quad)
    low = np.maximum(np.floor(quad.min(axis=0)).astype(int) - border, 0)
    high = np.minimum(np.ceil(quad.max(axis=0)).astype(int) + border, image.size)
    if (high - low < image.size).any():
        return image.crop((*low, *high)), quad - low, low.astype(np.float64)
    return image, quad, np.zeros(2)


def _pad(image: Image.Image, quad: np.ndarray) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Where the quad (plus border) leaves the image, pad by reflection and fade the padding.

    The padding is blurred and faded towards the image's median colour with the distance from
    the photo's edge. Returns the image, the quad in its pixels and the padding's top-left
    size [2] (zeros when not padded).
    """
    border, side = _border(quad), _side(quad)
    width, height = image.size
    low, high = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    pad = np.maximum([border - low[0], border - low[1], high[0] - width + border, high[1] - height + border], 0)
    if pad.max() <= border - 4:
        return image, quad, np.zeros(2)
    left, top, right, bottom = np.maximum(pad, int(np.rint(side * PAD_FRACTION)))
    pixels = np.pad(np.float32(image), ((top, bottom), (left, right), (0, 0)), "reflect")
    height, width, _ = pixels.shape
    y, x, _ = np.ogrid[:height, :width, :1]
    mask = np.maximum(1.0 - np.minimum(_edge_ratio(x, left), _edge_ratio(width - 1 - x, right)),
                      1.0 - np.minimum(_edge_ratio(y, top), _edge_ratio(height - 1 - y, bottom)))
    blur = side * BLUR_FRACTION
    pixels += (scipy.ndimage.gaussian_filter(pixels, [blur, blur, 0]) - pixels) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    pixels += (np.median(pixels, axis=(0, 1)) - pixels) * np.clip(mask, 0.0, 1.0)
    padded = Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), "RGB")
    origin = np.array([left, top], dtype=np.float64)
    return padded, quad + origin, origin


def _border(quad: np.ndarray) -> int:
    return max(int(np.rint(_side(quad) * BORDER_FRACTION)), MIN_BORDER)


def _edge_ratio(distance: np.ndarray, pad: int) -> np.ndarray:
    """Distance from the padded image's edge over that side's padding (float32); a side without
    padding is never near the edge (infinity), where FFHQ would divide by zero."""
    if pad > 0:
        return np.float32(distance) / np.float32(pad)
    return np.full(distance.shape, np.inf, dtype=np.float32)
