"""DAVIS-2017 semi-supervised J&F, as davisvideochallenge/davis2017-evaluation defines it.

Per sequence (``davis2017/evaluation.py`` ``semi-supervised`` task, ``davis.py``, ``results.py``):

* ground-truth index maps: value 255 (void) becomes background 0 **before anything else** (the
  semi-supervised task passes no void mask, so void pixels are plain background for J and F);
  the objects are 1..N with N = the largest label of the **first** ground-truth frame (a label
  above N that appears later is not an object);
* only frames ``[1:-1]`` are evaluated (the first and the last frame never are);
* predicted object k is label k (no matching). A predicted label above N is an error (the
  official script exits); an object the prediction never labels is an all-background mask
  (the official zero padding);
* per object and frame: **J** = |P & G| / |P | G|, 1 when the union is empty; **F** = boundary
  F-measure: boundaries by ``seg2bmap``, each dilated (``cv2.dilate``) by a disk of radius
  ``ceil(0.008 * sqrt(H^2 + W^2))`` (8 at 480x854), precision = |B_p & dil(B_g)| / |B_p|,
  recall = |B_g & dil(B_p)| / |B_g|; both boundaries empty -> F = 1, one empty -> F = 0;
* per object (``utils.db_statistics``): Mean = nanmean, Recall = mean(value > 0.5), Decay =
  nanmean(bin 1) - nanmean(bin 4) of 4 overlapping bins (see :func:`db_statistics`).

Global (``evaluation_method.py``): J-Mean, J-Recall, J-Decay, F-* = plain means over **all
objects of all sequences**; J&F-Mean = (J-Mean + F-Mean) / 2.

Each frame is evaluated on its own, so sequences can be streamed frame by frame.
"""
import math
from typing import Dict, Iterable, List, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "BOUND_TH",
    "VOID_LABEL",
    "DAVIS_METRICS",
    "bound_radius",
    "disk",
    "seg2bmap",
    "jaccard",
    "f_measure",
    "db_statistics",
    "num_davis_objects",
    "davis_frame_scores",
    "evaluate_davis_sequence",
    "summarize_davis",
]

BOUND_TH = 0.008
VOID_LABEL = 255
DAVIS_METRICS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def bound_radius(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm((height, width))))


def disk(radius: int) -> np.ndarray:
    """uint8 [2r+1, 2r+1] disk: 1 where x^2 + y^2 <= r^2 (``skimage.morphology.disk(r)``)."""
    axis = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(axis, axis)
    return (x ** 2 + y ** 2 <= radius ** 2).astype(np.uint8)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """bool [H, W] 1-pixel-wide boundary of a binary mask [H, W] (D. Martin's ``seg2bmap``).

    A pixel is on the boundary when it differs from its east, south or south-east neighbour
    (a neighbour outside the image counts as 0), except: on the last row only the east
    neighbour counts, on the last column only the south one, and the bottom-right pixel never
    is. The boundary is offset by half a pixel towards the origin.
    """
    seg = np.asarray(seg).astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """J of two binary masks [H, W]: |P & G| / |P | G|, 1 when the union is empty."""
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return np.count_nonzero(gt & pred) / union


def f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F of two binary masks [H, W] (``metrics.f_measure(pred, gt)``)."""
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    kernel = disk(bound_radius(*pred.shape, bound_th=bound_th))
    pred_b = seg2bmap(pred)
    gt_b = seg2bmap(gt)
    # cv2.dilate's default border never dilates from outside the image.
    pred_dil = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
    n_pred = np.count_nonzero(pred_b)
    n_gt = np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # precision 1 / recall 0, or precision 0 / recall 1
    precision = np.count_nonzero(pred_b & gt_dil) / n_pred
    recall = np.count_nonzero(gt_b & pred_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_statistics(values: Sequence[float]) -> Tuple[float, float, float]:
    """(Mean, Recall, Decay) of one object's per-frame values [F] (``utils.db_statistics``).

    Mean = nanmean; Recall = mean(values > 0.5) (a NaN counts as not > 0.5); Decay =
    nanmean(bin 1) - nanmean(bin 4) with ``ids = round(linspace(1, F, 5) + 1e-10) - 1`` and
    bin i = ``values[ids[i] : ids[i+1] + 1]`` (neighbouring bins share their edge frame). The
    official code stores ``ids`` as uint8, so they wrap modulo 256 (sequences of > 256 frames).
    NaN for all three when ``values`` is empty.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(np.nanmean(values)) if not np.all(np.isnan(values)) else math.nan
    recall = float(np.mean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64) % 256
    bins = [values[ids[i]: ids[i + 1] + 1] for i in range(4)]
    decay = _nanmean(bins[0]) - _nanmean(bins[3])
    return mean, recall, decay


def _nanmean(values: np.ndarray) -> float:
    """np.nanmean without its warning: NaN for an empty or all-NaN array."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def _ground_truth_labels(index_map: np.ndarray) -> np.ndarray:
    """A ground-truth index map [H, W] with void (255) turned into background 0."""
    index_map = np.asarray(index_map)
    return np.where(index_map == VOID_LABEL, 0, index_map)


def num_davis_objects(first_gt_frame: np.ndarray) -> int:
    """N: the largest object label of the first ground-truth frame, void excluded."""
    return int(_ground_truth_labels(first_gt_frame).max(initial=0))


def davis_frame_scores(gt_frame: np.ndarray, pred_frame: np.ndarray, num_objects: int,
                       bound_th: float = BOUND_TH) -> Tuple[np.ndarray, np.ndarray]:
    """J and F of objects 1..N on one frame: two float arrays [N].

    ``gt_frame``, ``pred_frame``: index maps [H, W] of the same size (ground truth may hold 255).
    """
    gt = _ground_truth_labels(gt_frame)
    pred = np.asarray(pred_frame)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction of size {pred.shape} for a ground-truth frame of size "
                         f"{gt.shape}")
    top = int(pred.max(initial=0))
    if top > num_objects:
        raise ValueError(f"the prediction has label {top} but the sequence has {num_objects} "
                         "objects (labels 1..N of the first ground-truth frame)")
    j = np.empty(num_objects)
    f = np.empty(num_objects)
    for k in range(1, num_objects + 1):
        j[k - 1] = jaccard(gt == k, pred == k)
        f[k - 1] = f_measure(gt == k, pred == k, bound_th=bound_th)
    return j, f


def evaluate_davis_sequence(gt_frames: Sequence[np.ndarray], pred_frames: Sequence[np.ndarray],
                            bound_th: float = BOUND_TH) -> Dict[str, np.ndarray]:
    """Per-object, per-frame J and F of one sequence: ``{"J": [N, T-2], "F": [N, T-2]}``.

    ``gt_frames``: T ground-truth index maps [H, W] (uint8, 255 = void; the first frame defines
    the objects); ``pred_frames``: T predicted index maps [H, W] (the first and last are not
    read). Either may be a [T, H, W] array or any sequence of [H, W] arrays (loaded lazily).
    """
    if len(pred_frames) != len(gt_frames):
        raise ValueError(f"{len(pred_frames)} predicted frames for a sequence of "
                         f"{len(gt_frames)} frames")
    n = num_davis_objects(gt_frames[0]) if len(gt_frames) else 0
    evaluated = range(1, len(gt_frames) - 1)
    j = np.zeros((n, len(evaluated)))
    f = np.zeros((n, len(evaluated)))
    for col, t in enumerate(evaluated):
        j[:, col], f[:, col] = davis_frame_scores(gt_frames[t], pred_frames[t], n, bound_th)
    return {"J": j, "F": f}


def summarize_davis(per_object: Iterable[Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
    """Global DAVIS metrics (fractions, as the official table) from one (J [F_i], F [F_i])
    pair of per-frame values per object, over all objects of all sequences.

    Returns ``{"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"}``;
    NaN when there is no object.
    """
    stats: Dict[str, List[float]] = {k: [] for k in DAVIS_METRICS[1:]}
    for j_values, f_values in per_object:
        for name, values in (("J", j_values), ("F", f_values)):
            mean, recall, decay = db_statistics(values)
            stats[f"{name}-Mean"].append(mean)
            stats[f"{name}-Recall"].append(recall)
            stats[f"{name}-Decay"].append(decay)
    out = {k: float(np.mean(v)) if v else math.nan for k, v in stats.items()}
    out = {"J&F-Mean": (out["J-Mean"] + out["F-Mean"]) / 2, **out}
    return out
