"""Visual prompts from ground-truth masks: sampling for training (COCO-SAM), deterministic prompts
for evaluation, and rasterisation of region prompts (scribbles, polygons, masks).

Coordinates are pixels of the image the prompts belong to (x right, y down); a point is the pixel
index (x, y) as the official code uses it, a box is ``xyxy`` float. Five prompt kinds
(:data:`PROMPT_KINDS`):

* ``point``: a box of +-:data:`POINT_BOX_RADIUS` px around the point (official pseudo box);
* ``box``: the box itself;
* ``scribble`` / ``polygon`` / ``mask`` (region prompts): a raster ``[H, W]`` of the region plus
  its tight box; the model pools pixel features inside the raster (SEEM-style).

Official facts followed (lxtGH/OMG-Seg ``OVSAMDataPreprocessor``, ``use_point_pseudo_box``):
training repeats the instances to ``num_proposals`` (``num_proposals // M + 1`` copies
concatenated, then truncated), draws a uniformly random pixel of each mask and uses the box
``[x - 3, y - 3, x + 3, y + 3]``; evaluation uses the argmax of the distance transform of each
mask padded by one background pixel (the image border counts as boundary), first maximum in
raster order.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

__all__ = [
    "PROMPT_KINDS",
    "REGION_KINDS",
    "POINT_BOX_RADIUS",
    "Prompts",
    "center_point",
    "random_point",
    "point_box",
    "mask_box",
    "rasterize_polygon",
    "rasterize_scribble",
    "random_scribble",
    "center_scribble",
    "random_polygon",
    "jitter_mask",
    "repeat_to",
    "sample_training_prompts",
    "evaluation_prompts",
]

PROMPT_KINDS = ("point", "box", "scribble", "polygon", "mask")
REGION_KINDS = ("scribble", "polygon", "mask")
# Half side of the pseudo box of a point prompt (official: point +- 3 px).
POINT_BOX_RADIUS = 3
# Stroke width of the deterministic evaluation scribble (pixels of the resized input).
EVAL_SCRIBBLE_THICKNESS = 3


@dataclass
class Prompts:
    """The prompts of one image.

    Attributes:
        kinds: P kinds from :data:`PROMPT_KINDS`.
        boxes: float32 [P, 4] ``xyxy`` in pixels of an image of ``image_size``.
        image_size: (H, W) of that image (unpadded).
        regions: bool [R, H, W] rasters of the R region prompts, in prompt order (None when
            R = 0); :attr:`region_index` gives the prompt of each raster.
    """

    kinds: List[str]
    boxes: torch.Tensor
    image_size: Tuple[int, int]
    regions: Optional[torch.Tensor] = field(default=None)

    def __post_init__(self):
        self.kinds = list(self.kinds)
        self.boxes = torch.as_tensor(self.boxes, dtype=torch.float32).reshape(-1, 4)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        p = len(self.kinds)
        unknown = sorted({k for k in self.kinds if k not in PROMPT_KINDS})
        if unknown:
            raise ValueError(f"unknown prompt kinds {unknown}; expected {PROMPT_KINDS}")
        if self.boxes.shape[0] != p:
            raise ValueError(f"{p} prompt kinds but {self.boxes.shape[0]} boxes")
        r = sum(k in REGION_KINDS for k in self.kinds)
        if self.regions is not None:
            self.regions = torch.as_tensor(self.regions, dtype=torch.bool)
            if tuple(self.regions.shape) != (r,) + self.image_size:
                raise ValueError(
                    f"regions must be [R={r} region prompts, H, W={self.image_size}], got "
                    f"{tuple(self.regions.shape)}"
                )
        elif r:
            raise ValueError("region prompts (scribble / polygon / mask) need their rasters")

    def __len__(self) -> int:
        return len(self.kinds)

    @property
    def has_region(self) -> torch.Tensor:
        """bool [P]: which prompts carry a region raster."""
        return torch.tensor([k in REGION_KINDS for k in self.kinds], dtype=torch.bool)

    @property
    def region_index(self) -> torch.Tensor:
        """int64 [R]: the prompt index of each row of :attr:`regions`."""
        return self.has_region.nonzero().flatten()

    @staticmethod
    def from_parts(
        kinds: Sequence[str],
        boxes: Sequence[Sequence[float]],
        regions: Sequence[Optional[np.ndarray]],
        image_size: Tuple[int, int],
    ) -> "Prompts":
        """Prompts from per-prompt parts; ``regions[i]`` is the bool [H, W] raster of a region
        prompt, None for a point or box."""
        for i, (kind, r) in enumerate(zip(kinds, regions)):
            if (kind in REGION_KINDS) != (r is not None):
                raise ValueError(f"prompt {i} ({kind}): a raster is needed for, and only for, "
                                 f"{REGION_KINDS} prompts")
        rasters = [np.ascontiguousarray(r, dtype=bool) for r in regions if r is not None]
        raster = torch.from_numpy(np.stack(rasters)) if rasters else None
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return Prompts(list(kinds), torch.from_numpy(boxes), image_size, raster)


# ----------------------------------------------------------------------------- points and boxes
def _check_mask(mask: np.ndarray, what: str = "mask") -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"{what} must be [H, W], got shape {mask.shape}")
    if not mask.any():
        raise ValueError(f"{what} is empty: a prompt needs at least one pixel")
    return mask


def _distance_to_boundary(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of every mask pixel to the nearest non-mask pixel, the image border
    counting as non-mask (the mask is padded by one background pixel)."""
    padded = np.pad(mask, 1, mode="constant", constant_values=False)
    return distance_transform_edt(padded)[1:-1, 1:-1]


def center_point(mask: np.ndarray) -> Tuple[int, int]:
    """(x, y) of the interior pixel farthest from the boundary (argmax of the distance
    transform; ties: first in raster order). A mask in several parts gets one point, in the part
    with the largest inscribed distance (the official metric does the same)."""
    mask = _check_mask(mask)
    dist = _distance_to_boundary(mask)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def random_point(mask: np.ndarray, rng: np.random.Generator) -> Tuple[int, int]:
    """(x, y) of a uniformly random pixel of ``mask`` (official training points)."""
    ys, xs = np.nonzero(_check_mask(mask))
    i = int(rng.integers(len(xs)))
    return int(xs[i]), int(ys[i])


def point_box(x: float, y: float, radius: float = POINT_BOX_RADIUS) -> List[float]:
    """The pseudo box ``[x - r, y - r, x + r, y + r]`` of a point prompt."""
    return [x - radius, y - radius, x + radius, y + radius]


def mask_box(mask: np.ndarray) -> List[float]:
    """Tight ``xyxy`` box of a mask: ``[min x, min y, max x + 1, max y + 1]``."""
    ys, xs = np.nonzero(_check_mask(mask))
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


# ----------------------------------------------------------------------------- rasterisation
def rasterize_polygon(vertices: np.ndarray, image_size: Tuple[int, int]) -> np.ndarray:
    """bool [H, W]: the filled polygon of ``vertices`` [V >= 3, 2] (x, y) (OpenCV ``fillPoly``,
    vertices rounded to pixels)."""
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    if len(vertices) < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got {len(vertices)}")
    canvas = np.zeros(tuple(image_size), dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(vertices).astype(np.int32)], 1)
    return canvas.astype(bool)


def rasterize_scribble(
    strokes: Sequence[np.ndarray], image_size: Tuple[int, int], thickness: int = 3
) -> np.ndarray:
    """bool [H, W]: the polylines ``strokes`` (each [N >= 1, 2] (x, y); one vertex is a dot)
    drawn ``thickness`` px wide (OpenCV ``polylines`` / ``circle``)."""
    canvas = np.zeros(tuple(image_size), dtype=np.uint8)
    thickness = max(1, int(round(thickness)))
    for stroke in strokes:
        pts = np.round(np.asarray(stroke, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        if len(pts) == 1:
            cv2.circle(canvas, (int(pts[0, 0]), int(pts[0, 1])), max(thickness // 2, 0), 1, -1)
        elif len(pts) > 1:
            cv2.polylines(canvas, [pts], False, 1, thickness)
    return canvas.astype(bool)


def _interior(mask: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """Pixels of ``mask`` at least ``fraction`` of its largest boundary distance inside."""
    dist = _distance_to_boundary(mask)
    return dist >= max(1.0, fraction * float(dist.max()))


def random_scribble(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random stroke inside ``mask``: a polyline through 2-4 random pixels of its interior
    (distance to the boundary >= half the largest), 1 to ~sqrt(area)/10 px wide, clipped to the
    mask; never empty (falls back to one interior pixel)."""
    mask = _check_mask(mask)
    ys, xs = np.nonzero(_interior(mask))
    n = int(rng.integers(2, 5))
    idx = rng.integers(len(xs), size=n)
    pts = np.stack([xs[idx], ys[idx]], axis=1)
    max_width = int(np.clip(np.sqrt(mask.sum()) / 10.0, 1, 15))
    stroke = rasterize_scribble([pts], mask.shape, int(rng.integers(1, max_width + 1))) & mask
    if not stroke.any():
        stroke = np.zeros_like(mask)
        stroke[pts[0, 1], pts[0, 0]] = True
    return stroke


def center_scribble(mask: np.ndarray, thickness: int = EVAL_SCRIBBLE_THICKNESS) -> np.ndarray:
    """The deterministic evaluation scribble of a mask: a straight stroke through
    :func:`center_point` along the mask's principal axis (image moments; horizontal for an
    isotropic mask), running while the pixels stay in the mask's interior (distance to the
    boundary >= half the centre's), ``thickness`` px wide, clipped to the mask. Contains the
    centre pixel."""
    mask = _check_mask(mask)
    cx, cy = center_point(mask)
    dist = _distance_to_boundary(mask)
    inner = dist >= max(1.0, 0.5 * float(dist[cy, cx]))
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    theta = 0.5 * np.arctan2(2.0 * m["mu11"], m["mu20"] - m["mu02"])
    direction = np.array([np.cos(theta), np.sin(theta)])
    h, w = mask.shape
    ends = []
    for sign in (1.0, -1.0):
        end = (cx, cy)
        for step in range(1, h + w):
            x, y = np.round(np.array([cx, cy]) + sign * step * direction).astype(int)
            if not (0 <= x < w and 0 <= y < h) or not inner[y, x]:
                break
            end = (int(x), int(y))
        ends.append(end)
    stroke = rasterize_scribble([np.array([ends[1], ends[0]])], mask.shape, thickness) & mask
    stroke[cy, cx] = True
    return stroke


def random_polygon(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertices [V >= 3, 2] of a random polygon approximating ``mask``: the outer contour of its
    largest part simplified by Douglas-Peucker with a tolerance of U(0.5 %, 5 %) of the contour
    length (OpenCV ``approxPolyDP``), vertices moved by up to 1 % of sqrt(area); a contour that
    simplifies below 3 vertices uses its minimum-area rectangle."""
    mask = _check_mask(mask)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    eps = float(rng.uniform(0.005, 0.05)) * cv2.arcLength(contour, True)
    poly = cv2.approxPolyDP(contour, eps, True).reshape(-1, 2).astype(np.float64)
    if len(poly) < 3:
        poly = cv2.boxPoints(cv2.minAreaRect(contour)).astype(np.float64)
    wiggle = 0.01 * np.sqrt(mask.sum())
    return poly + rng.uniform(-wiggle, wiggle, size=poly.shape)


def jitter_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A perturbed copy of ``mask`` as a mask prompt: eroded or dilated (elliptical kernel of
    radius up to 3 % of sqrt(area)) and shifted by up to 3 % of sqrt(area); the mask itself when
    the perturbation would empty it."""
    mask = _check_mask(mask)
    scale = np.sqrt(mask.sum())
    out = mask.astype(np.uint8)
    radius = int(rng.integers(0, max(1, int(0.03 * scale)) + 1))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(out, kernel)
    shift = int(0.03 * scale)
    if shift > 0:
        dx, dy = (int(v) for v in rng.integers(-shift, shift + 1, size=2))
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        out = cv2.warpAffine(out, matrix, (mask.shape[1], mask.shape[0]),
                             flags=cv2.INTER_NEAREST, borderValue=0)
    out = out.astype(bool)
    return out if out.any() else mask


# ----------------------------------------------------------------------------- prompt sets
def repeat_to(num_entities: int, num_prompts: int) -> np.ndarray:
    """Entity index of each of ``num_prompts`` prompts, official order: ``num_prompts // M + 1``
    copies of ``0..M-1`` concatenated, truncated (every entity once before any twice); empty for
    ``M = 0``."""
    if num_entities <= 0:
        return np.zeros((0,), dtype=np.int64)
    copies = num_prompts // num_entities + 1
    return np.tile(np.arange(num_entities, dtype=np.int64), copies)[:num_prompts]


def _region_prompt(kind: str, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "scribble":
        return random_scribble(mask, rng)
    if kind == "polygon":
        region = rasterize_polygon(random_polygon(mask, rng), mask.shape)
        return region if region.any() else mask
    return jitter_mask(mask, rng)


def sample_training_prompts(
    masks: np.ndarray,
    num_prompts: int,
    kind_weights: Dict[str, float],
    rng: np.random.Generator,
) -> Tuple[Prompts, np.ndarray]:
    """The prompts of a training image (COCO-SAM mode).

    Args:
        masks: bool [M, H, W] non-empty entity masks (small ones already dropped).
        num_prompts: prompts per image (official 20); entities are repeated as officially
            (:func:`repeat_to`); fewer prompts only when M = 0 (then none).
        kind_weights: sampling weight of each kind of :data:`PROMPT_KINDS` (missing = 0), drawn
            independently for every prompt.
        rng: random generator.

    Returns:
        (``Prompts`` of the P prompts, int64 [P] index of the entity each prompt targets).
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [M, H, W], got shape {masks.shape}")
    image_size = masks.shape[1:]
    unknown = sorted(set(kind_weights) - set(PROMPT_KINDS))
    if unknown:
        raise ValueError(f"kind_weights names unknown prompt kinds {unknown}; "
                         f"expected some of {PROMPT_KINDS}")
    weights = np.array([float(kind_weights.get(k, 0.0)) for k in PROMPT_KINDS])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"kind_weights must be >= 0 with a positive sum, got {kind_weights}")
    index = repeat_to(len(masks), num_prompts)
    kinds = [PROMPT_KINDS[i] for i in rng.choice(len(PROMPT_KINDS), size=len(index),
                                                  p=weights / weights.sum())]
    boxes, regions = [], []
    for kind, i in zip(kinds, index):
        mask = masks[i]
        region = None
        if kind == "point":
            box = point_box(*random_point(mask, rng))
        elif kind == "box":
            box = mask_box(mask)
        else:
            region = _region_prompt(kind, mask, rng)
            box = mask_box(region)
        boxes.append(box)
        regions.append(region)
    return Prompts.from_parts(kinds, boxes, regions, image_size), index


def evaluation_prompts(
    masks: np.ndarray, modes: Sequence[str] = ("point", "box", "scribble")
) -> Tuple[Prompts, np.ndarray, List[str]]:
    """Deterministic prompts of every entity for each evaluation mode.

    ``point``: :func:`center_point` -> +-3 px box (the COCO-SAM protocol); ``box``: the tight
    box of the mask; ``scribble``: :func:`center_scribble`. An empty mask (e.g. a segment that
    vanishes at the test resolution) gets the prompt of pixel (0, 0), as the official
    ``distance_transform`` argmax of an all-zero map.

    Returns:
        (``Prompts`` ordered mode by mode, entity by entity; int64 [P] entity index; [P] modes).
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [M, H, W], got shape {masks.shape}")
    unknown = [m for m in modes if m not in ("point", "box", "scribble")]
    if unknown:
        raise ValueError(f"unknown evaluation prompt modes {unknown}; "
                         "expected point, box, scribble")
    image_size = masks.shape[1:]
    kinds, boxes, regions, index, mode_of = [], [], [], [], []
    for mode in modes:
        for i, mask in enumerate(masks):
            region = None
            if not mask.any():
                box = point_box(0, 0) if mode == "point" else [0.0, 0.0, 1.0, 1.0]
                if mode == "scribble":
                    region = np.zeros(image_size, dtype=bool)
                    region[0, 0] = True
            elif mode == "point":
                box = point_box(*center_point(mask))
            elif mode == "box":
                box = mask_box(mask)
            else:
                region = center_scribble(mask)
                box = mask_box(region)
            kinds.append(mode)
            boxes.append(box)
            regions.append(region)
            index.append(i)
            mode_of.append(mode)
    prompts = Prompts.from_parts(kinds, boxes, regions, image_size)
    return prompts, np.asarray(index, dtype=np.int64), mode_of
