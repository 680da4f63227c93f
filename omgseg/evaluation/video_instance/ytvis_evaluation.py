"""``YTVISEvaluator``: YouTube-VIS video AP (``evaluator_type "ytvis"``) as a Detectron2
``DatasetEvaluator``.

Model output it consumes, one dict per video (``outputs[i]`` for ``inputs[i]``)::

    {
      "video_id": int,                 # optional: taken from the input dict when absent
      "video_instances": [             # any number; the official tool keeps the 100 best per
        {                              # video and category
          "score": float,
          "category_id": int,          # contiguous id (index in metadata.thing_classes)
          "segmentations": [RLE | None] * T,   # pycocotools compressed RLE per frame at the
        },                                     # original size (counts str or bytes); None = absent
      ],
    }

T must equal the video's ``length`` (when the input dict has one). Results: ``{"segm": {"AP",
"AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AP-<class>"...}}`` in percent (NaN where the
official value is -1). ``<output_dir>/results.json`` (the YouTube-VIS submission format, dataset
category ids) is written atomically on the main process. A ground-truth json without
annotations (the official valid / test splits) gets only ``results.json`` and an empty result.
"""
import itertools
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ...utils.file_io import atomic_output
from .ytvis_ap import evaluate_ytvis, ytvis_ground_truth

__all__ = ["YTVISEvaluator", "build_ytvis_evaluators"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


def _json_rle(rle: Optional[Mapping], where: str) -> Optional[Dict]:
    if rle is None:
        return None
    if not isinstance(rle, Mapping) or "counts" not in rle or "size" not in rle:
        raise ValueError(f"{where}: a segmentation must be a compressed RLE dict "
                         f"({{'size', 'counts'}}) or None, got {type(rle).__name__}")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if not isinstance(counts, str):
        raise ValueError(f"{where}: RLE counts must be a compressed str/bytes (pycocotools "
                         "mask.encode), not an uncompressed list")
    return {"size": [int(s) for s in rle["size"]], "counts": counts}


class YTVISEvaluator(DatasetEvaluator):
    """YouTube-VIS AP of a registered dataset (metadata ``json_file`` and
    ``thing_dataset_id_to_contiguous_id``), with youtubevos/cocoapi's rules (see ``ytvis_ap``).
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None,
                 distributed: bool = True):
        self._dataset_name = dataset_name
        self._metadata = MetadataCatalog.get(dataset_name)
        self._json_file = self._metadata.get("json_file", None)
        if not self._json_file:
            raise ValueError(f"YTVISEvaluator: dataset '{dataset_name}' has no metadata "
                             "'json_file' (the YouTube-VIS ground-truth json)")
        id_map = self._metadata.get("thing_dataset_id_to_contiguous_id", None)
        if not id_map:
            raise ValueError(f"YTVISEvaluator: dataset '{dataset_name}' has no metadata "
                             "'thing_dataset_id_to_contiguous_id'")
        self._contiguous_to_dataset = {int(v): int(k) for k, v in id_map.items()}
        self._output_dir = output_dir
        self._distributed = distributed
        self.reset()

    def reset(self) -> None:
        self._predictions: List[Dict] = []

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            video_id = out.get("video_id", inp.get("video_id"))
            if video_id is None:
                raise ValueError("YTVISEvaluator: neither the output nor the input names a "
                                 "'video_id'")
            length = inp.get("length")
            for n, inst in enumerate(out["video_instances"]):
                where = f"video {video_id}, instance {n}"
                category = int(inst["category_id"])
                if category not in self._contiguous_to_dataset:
                    raise ValueError(f"{where}: category_id {category} is not a contiguous id "
                                     f"of dataset '{self._dataset_name}' (0.."
                                     f"{len(self._contiguous_to_dataset) - 1})")
                segms = [_json_rle(s, where) for s in inst["segmentations"]]
                if length is not None and len(segms) != int(length):
                    raise ValueError(f"{where}: {len(segms)} segmentations for a video of "
                                     f"{length} frames")
                self._predictions.append({
                    "video_id": video_id,
                    "score": float(inst["score"]),
                    "category_id": self._contiguous_to_dataset[category],
                    "segmentations": segms,
                })

    def evaluate(self):
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(self._predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        else:
            predictions = self._predictions
        if self._output_dir:
            path = os.path.join(self._output_dir, RESULTS_FILE)
            with atomic_output(path, suffix=".json") as tmp:
                with open(tmp, "w") as f:
                    json.dump(predictions, f)
            logger.info("Wrote %d YouTube-VIS results to %s", len(predictions), path)
        with open(self._json_file) as f:
            gt_json = json.load(f)
        if not gt_json.get("annotations"):
            logger.info("%s has no annotations (a withheld split): %s is the submission to the "
                        "evaluation server; no metrics are computed here.", self._json_file,
                        RESULTS_FILE)
            return {}
        gt = ytvis_ground_truth(gt_json)
        del gt_json
        results = evaluate_ytvis(gt, predictions)
        logger.info("YouTube-VIS results on %s: %s", self._dataset_name,
                    {k: round(v, 3) for k, v in results.items() if not k.startswith("AP-")})
        return OrderedDict(segm=results)


def build_ytvis_evaluators(cfg, dataset_name: str, output_folder: str
                           ) -> List[DatasetEvaluator]:
    """``EVALUATOR_BUILDERS["ytvis"]``: the YouTube-VIS evaluator if instance output is on."""
    if not cfg.MODEL.OMG.TEST.INSTANCE_ON:
        return []
    return [YTVISEvaluator(dataset_name, output_dir=output_folder)]
