"""``DAVISEvaluator``: DAVIS-2017 semi-supervised J&F (``evaluator_type "davis"``) as a Detectron2
``DatasetEvaluator``.

Model output it consumes, one dict per video (``outputs[i]`` for ``inputs[i]``)::

    {
      "video_id": str,        # the sequence name; optional: taken from the input dict when absent
      "vos_masks": uint8 [T, H, W] numpy array / torch tensor, or a list of T index maps [H, W]
                   or of T index-PNG paths: 0 = background, k = object k of the first
                   ground-truth frame, at the original size.
    }

Each video is scored in ``process`` (J and F per object and evaluated frame, as
davis2017-evaluation; see ``davis_jf``), so memory is one video at a time and only the small
per-object score arrays are kept and gathered. With an ``output_dir`` the predicted index maps
are also written as palette PNGs ``<output_dir>/davis_results/<video>/<frame>.png`` (the frame
names of the dataset; the layout the official script reads), one video folder at a time through
a temporary folder and a rename. Registered videos without a prediction are scored as an
all-background prediction (the official script would stop), with a warning. A split whose
ground truth stops at the first frame (DAVIS test-dev) gets the PNGs only and an empty result.

Results: ``{"vos": {"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall",
"F-Decay"}}`` in percent.
"""
import collections.abc
import itertools
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image
from tabulate import tabulate

from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ...utils.file_io import default_mode
from .davis_jf import evaluate_davis_sequence, summarize_davis

__all__ = ["DAVISEvaluator", "build_davis_evaluators", "davis_palette", "IndexPngFrames"]

logger = logging.getLogger(__name__)

RESULTS_DIR = "davis_results"


def davis_palette() -> List[int]:
    """The 256-colour PASCAL VOC / DAVIS palette as a flat [768] list (colour k for label k)."""
    palette = []
    for label in range(256):
        r = g = b = 0
        c = label
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def read_index_png(path: str) -> np.ndarray:
    """uint8 [H, W] index map of a palette / grayscale PNG (palette indices, not colours)."""
    with Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise ValueError(f"{path}: an index PNG (mode P or L) is expected, got mode {im.mode}")
        return np.array(im)


class IndexPngFrames(collections.abc.Sequence):
    """A list of index-PNG paths read lazily as uint8 [H, W] maps (one frame in memory)."""

    def __init__(self, paths: Sequence[str]):
        self._paths = list(paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, t):
        return read_index_png(self._paths[t])


def _as_frames(vos_masks, where: str) -> Sequence[np.ndarray]:
    """The predicted frames as a sequence of [H, W] index maps."""
    if hasattr(vos_masks, "detach"):  # torch tensor
        vos_masks = vos_masks.detach().cpu().numpy()
    if isinstance(vos_masks, np.ndarray):
        if vos_masks.ndim != 3:
            raise ValueError(f"{where}: vos_masks must be [T, H, W], got shape {vos_masks.shape}")
        return vos_masks
    if not isinstance(vos_masks, collections.abc.Sequence):
        vos_masks = list(vos_masks)
    if len(vos_masks) and isinstance(vos_masks[0], (str, os.PathLike)):
        if not all(isinstance(m, (str, os.PathLike)) for m in vos_masks):
            raise ValueError(f"{where}: vos_masks mixes PNG paths and arrays")
        return IndexPngFrames([os.fspath(m) for m in vos_masks])
    # A lazy sequence (the streaming video output) is read frame by frame: not materialised.
    return vos_masks


def _save_video_pngs(root: str, video: str, stems: Sequence[str],
                     frames: Sequence[np.ndarray]) -> None:
    """Write ``root/video/<stem>.png`` for every frame: into a temporary sibling folder, then
    renamed into place (a previous folder of that video is replaced)."""
    if not video or os.sep in video or video in (".", ".."):
        raise ValueError(f"video id {video!r} cannot be used as a folder name")
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{video}-", dir=root)
    try:
        palette = davis_palette()
        for stem, frame in zip(stems, frames):
            frame = np.asarray(frame)
            if frame.min(initial=0) < 0 or frame.max(initial=0) > 255:
                raise ValueError(f"video {video}: predicted labels must be in 0..255")
            im = Image.fromarray(frame.astype(np.uint8))
            im.putpalette(palette)  # mode L -> P, pixel values kept as palette indices
            im.save(os.path.join(tmp, f"{stem}.png"))
            os.chmod(os.path.join(tmp, f"{stem}.png"), default_mode())
        os.chmod(tmp, default_mode(is_dir=True))
        final = os.path.join(root, video)
        old = None
        if os.path.lexists(final):  # a previous run's folder of this video: replaced
            old = tempfile.mkdtemp(prefix=f".old-{video}-", dir=root)
            os.rename(final, os.path.join(old, video))
        try:
            os.rename(tmp, final)
        except BaseException:
            if old is not None:
                os.rename(os.path.join(old, video), final)
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


class DAVISEvaluator(DatasetEvaluator):
    """DAVIS-2017 J&F of a registered DAVIS-layout dataset (records with ``video_id``,
    ``file_names`` and ``mask_file_names``: one ground-truth index PNG per frame)."""

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None,
                 distributed: bool = True):
        self._dataset_name = dataset_name
        self._gt: Dict[str, List[Optional[str]]] = OrderedDict()
        self._stems: Dict[str, List[str]] = {}
        for record in DatasetCatalog.get(dataset_name):
            video = str(record["video_id"])
            self._gt[video] = list(record.get("mask_file_names") or [None] * record["length"])
            self._stems[video] = [os.path.splitext(os.path.basename(p))[0]
                                  for p in record["file_names"]]
        # Withheld splits (test-dev) annotate only the first frame: predictions are written,
        # nothing is scored.
        self._has_ground_truth = all(m is not None for masks in self._gt.values()
                                     for m in masks)
        if not self._has_ground_truth:
            logger.info("DAVIS dataset '%s' lacks ground truth for some frames: predictions "
                        "will be written, not scored", dataset_name)
        self._output_dir = output_dir
        self._distributed = distributed
        self.reset()

    def reset(self) -> None:
        self._scores: List[Dict] = []

    def _score(self, video: str, pred_frames: Sequence[np.ndarray]) -> Dict:
        scores = evaluate_davis_sequence(IndexPngFrames(self._gt[video]), pred_frames)
        return {"video_id": video, "J": scores["J"], "F": scores["F"]}

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            video = out.get("video_id", inp.get("video_id"))
            if video is None or str(video) not in self._gt:
                raise ValueError(f"DAVISEvaluator: video {video!r} is not in dataset "
                                 f"'{self._dataset_name}'")
            video = str(video)
            frames = _as_frames(out["vos_masks"], f"video {video}")
            if len(frames) != len(self._stems[video]):
                raise ValueError(f"video {video}: {len(frames)} predicted frames for a video of "
                                 f"{len(self._stems[video])} frames")
            if self._has_ground_truth:
                self._scores.append(self._score(video, frames))
            if self._output_dir:
                _save_video_pngs(os.path.join(self._output_dir, RESULTS_DIR), video,
                                 self._stems[video], frames)

    def evaluate(self):
        if self._distributed:
            comm.synchronize()
            scores = list(itertools.chain(*comm.gather(self._scores, dst=0)))
            if not comm.is_main_process():
                return {}
        else:
            scores = self._scores
        if not self._has_ground_truth:
            logger.info("DAVIS dataset '%s' has no ground truth beyond first frames (a withheld "
                        "split): the predicted PNGs%s are the submission; no metrics are "
                        "computed here.", self._dataset_name,
                        f" in {os.path.join(self._output_dir, RESULTS_DIR)}"
                        if self._output_dir else "")
            return {}
        by_video: Dict[str, Dict] = {}
        for s in scores:
            if s["video_id"] in by_video:
                logger.warning("DAVIS: video %s was predicted more than once; keeping the first",
                               s["video_id"])
                continue
            by_video[s["video_id"]] = s
        missing = [v for v in self._gt if v not in by_video]
        if missing:
            logger.warning("DAVIS: %d of %d videos have no prediction and are scored as "
                           "all-background: %s", len(missing), len(self._gt), missing[:10])
            for video in missing:
                gt = IndexPngFrames(self._gt[video])
                empty = np.zeros_like(gt[0])
                by_video[video] = self._score(video, [empty] * len(gt))
        per_object = []
        rows = []
        for video in self._gt:  # registered order
            j, f = by_video[video]["J"], by_video[video]["F"]
            per_object += list(zip(j, f))
            rows.append([video, len(j), *(100 * float(np.mean(x)) if x.size else float("nan")
                                          for x in (j, f))])
        results = {k: 100 * v for k, v in summarize_davis(per_object).items()}
        logger.info("DAVIS per sequence (J / F mean over objects and frames):\n%s",
                    tabulate(rows, headers=["sequence", "objects", "J", "F"], floatfmt=".2f"))
        logger.info("DAVIS results on %s: %s", self._dataset_name,
                    {k: round(v, 3) for k, v in results.items()})
        return OrderedDict(vos=results)


def build_davis_evaluators(cfg, dataset_name: str, output_folder: str
                           ) -> List[DatasetEvaluator]:
    """``EVALUATOR_BUILDERS["davis"]``: the DAVIS J&F evaluator."""
    return [DAVISEvaluator(dataset_name, output_dir=output_folder)]
