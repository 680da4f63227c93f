"""Evaluator table (by metadata ``evaluator_type``) and a summary table of the headline numbers."""
import importlib.util
import logging
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping

from tabulate import tabulate

from detectron2.data import MetadataCatalog
from detectron2.evaluation import (
    COCOEvaluator,
    COCOPanopticEvaluator,
    DatasetEvaluator,
    DatasetEvaluators,
    SemSegEvaluator,
)

from .prompt import PromptMIoUEvaluator
from .video_instance import build_davis_evaluators, build_ytvis_evaluators
from .video_panoptic import video_panoptic_evaluators

__all__ = [
    "EVALUATOR_BUILDERS",
    "build_evaluator",
    "format_results_table",
    "HEADLINE_METRICS",
]

logger = logging.getLogger(__name__)


def _instance_evaluator(cfg, dataset_name: str, output_folder: str) -> COCOEvaluator:
    # Official COCO API (use_fast_impl=False): the fast path needs Detectron2's compiled _C.
    return COCOEvaluator(
        dataset_name,
        tasks=("segm",),
        distributed=True,
        output_dir=output_folder,
        use_fast_impl=False,
        max_dets_per_image=cfg.MODEL.OMG.TEST.DETECTIONS_PER_IMAGE,
    )


def _semantic_evaluator(cfg, dataset_name: str, output_folder: str) -> SemSegEvaluator:
    try:
        return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder)
    except KeyError as e:
        raise ValueError(
            f"SemSegEvaluator for dataset '{dataset_name}' needs 'file_name' and "
            f"'sem_seg_file_name' in every record (missing {e}); register semantic ground truth "
            f"or set MODEL.OMG.TEST.SEMANTIC_ON False"
        ) from e
    except AttributeError as e:
        raise ValueError(
            f"SemSegEvaluator for dataset '{dataset_name}' needs metadata 'stuff_classes' ({e})"
        ) from e


def _panoptic_evaluators(cfg, dataset_name, output_folder) -> List[DatasetEvaluator]:
    """COCO / ADE20K panoptic: PQ, plus mask AP (needs an instance json) and mIoU."""
    test = cfg.MODEL.OMG.TEST
    meta = MetadataCatalog.get(dataset_name)
    out: List[DatasetEvaluator] = []
    if test.PANOPTIC_ON:
        out.append(COCOPanopticEvaluator(dataset_name, output_folder))
    if test.INSTANCE_ON:
        if meta.get("json_file", None):
            out.append(_instance_evaluator(cfg, dataset_name, output_folder))
        else:
            logger.warning(
                f"Dataset '{dataset_name}' has no instance json_file in its metadata: "
                f"no mask AP evaluation"
            )
    if test.SEMANTIC_ON:
        out.append(_semantic_evaluator(cfg, dataset_name, output_folder))
    return out


def _coco_instance_evaluators(cfg, dataset_name, output_folder) -> List[DatasetEvaluator]:
    if cfg.MODEL.OMG.TEST.INSTANCE_ON:
        return [_instance_evaluator(cfg, dataset_name, output_folder)]
    return []


def _sem_seg_evaluators(cfg, dataset_name, output_folder) -> List[DatasetEvaluator]:
    if cfg.MODEL.OMG.TEST.SEMANTIC_ON:
        return [_semantic_evaluator(cfg, dataset_name, output_folder)]
    return []


def _require_cityscapesscripts(dataset_name: str, what: str) -> None:
    if importlib.util.find_spec("cityscapesscripts") is None:
        raise ImportError(
            f"{what} for dataset '{dataset_name}' needs the 'cityscapesscripts' package "
            f"(pip install cityscapesscripts), or turn the corresponding MODEL.OMG.TEST.*_ON "
            f"switch off"
        )


def _cityscapes_panoptic_evaluators(cfg, dataset_name, output_folder) -> List[DatasetEvaluator]:
    test = cfg.MODEL.OMG.TEST
    out: List[DatasetEvaluator] = []
    if test.SEMANTIC_ON:
        _require_cityscapesscripts(dataset_name, "CityscapesSemSegEvaluator")
        from detectron2.evaluation import CityscapesSemSegEvaluator

        out.append(CityscapesSemSegEvaluator(dataset_name))
    if test.INSTANCE_ON:
        _require_cityscapesscripts(dataset_name, "CityscapesInstanceEvaluator")
        from detectron2.evaluation import CityscapesInstanceEvaluator

        out.append(CityscapesInstanceEvaluator(dataset_name))
    if test.PANOPTIC_ON:
        out.append(COCOPanopticEvaluator(dataset_name, output_folder))
    return out


def _prompt_evaluators(cfg, dataset_name, output_folder) -> List[DatasetEvaluator]:
    """COCO-SAM interactive mIoU, one number per prompt mode (INPUT.PROMPT.EVAL_MODES)."""
    return [PromptMIoUEvaluator(dataset_name)]


# evaluator_type -> fn(cfg, dataset_name, output_folder) -> list of evaluators.
EVALUATOR_BUILDERS: Dict[str, Callable] = {
    "coco_panoptic_seg": _panoptic_evaluators,
    "ade20k_panoptic_seg": _panoptic_evaluators,
    "coco": _coco_instance_evaluators,
    "sem_seg": _sem_seg_evaluators,
    "cityscapes_panoptic_seg": _cityscapes_panoptic_evaluators,
    # Video datasets (one input = one video): VPQ + STQ / VSS mIoU + VC, YouTube-VIS AP, DAVIS J&F.
    "vps": video_panoptic_evaluators,
    "ytvis": build_ytvis_evaluators,
    "davis": build_davis_evaluators,
    # Prompt datasets (COCO-SAM): interactive mIoU per prompt mode.
    "coco_sam": _prompt_evaluators,
}


def build_evaluator(cfg, dataset_name: str, output_folder: str) -> DatasetEvaluators:
    """Evaluators for ``dataset_name`` chosen by its metadata ``evaluator_type`` and the
    ``MODEL.OMG.TEST.{PANOPTIC,INSTANCE,SEMANTIC}_ON`` switches."""
    meta = MetadataCatalog.get(dataset_name)
    evaluator_type = meta.get("evaluator_type", None)
    if evaluator_type not in EVALUATOR_BUILDERS:
        raise NotImplementedError(
            f"No evaluator for dataset '{dataset_name}' with evaluator_type {evaluator_type!r}; "
            f"supported types: {sorted(EVALUATOR_BUILDERS)}"
        )
    evaluators = EVALUATOR_BUILDERS[evaluator_type](cfg, dataset_name, output_folder)
    if not evaluators:
        raise ValueError(
            f"No evaluator built for dataset '{dataset_name}' (evaluator_type "
            f"{evaluator_type!r}): the MODEL.OMG.TEST.*_ON switches turn off every task it has"
        )
    return DatasetEvaluators(evaluators)


# (column title, task key in the results, metric key)
HEADLINE_METRICS = (
    ("PQ", "panoptic_seg", "PQ"),
    ("PQ_th", "panoptic_seg", "PQ_th"),
    ("PQ_st", "panoptic_seg", "PQ_st"),
    ("SQ", "panoptic_seg", "SQ"),
    ("RQ", "panoptic_seg", "RQ"),
    ("mask AP", "segm", "AP"),
    ("AP50", "segm", "AP50"),
    ("AP75", "segm", "AP75"),
    ("mIoU", "sem_seg", "mIoU"),
    ("fwIoU", "sem_seg", "fwIoU"),
    ("mACC", "sem_seg", "mACC"),
    ("pACC", "sem_seg", "pACC"),
    ("VPQ", "vpq", "VPQ"),
    ("STQ", "vpq", "STQ"),
    ("VSS mIoU", "vss", "mIoU"),
    ("VC8", "vss", "VC8"),
    ("J&F", "vos", "J&F-Mean"),
    ("mIoU point", "prompt", "mIoU_point"),
    ("mIoU box", "prompt", "mIoU_box"),
    ("mIoU scribble", "prompt", "mIoU_scribble"),
)
_TASK_KEYS = {task for _, task, _ in HEADLINE_METRICS}


def _is_task_dict(results: Mapping) -> bool:
    return any(k in _TASK_KEYS for k in results)


def format_results_table(results: Mapping, dataset_name: str = "") -> str:
    """A table of the headline numbers, one row per dataset.

    ``results`` is either ``{dataset_name: {task: {metric: value}}}`` (several test datasets) or
    ``{task: {metric: value}}`` (Detectron2 flattens a single dataset; ``dataset_name`` then
    names the row). Columns with no value for
    any dataset are left out; a missing value shows as "-".
    """
    if not results:
        return "(no results)"
    if _is_task_dict(results):
        per_dataset = OrderedDict([(dataset_name, results)])
    else:
        per_dataset = OrderedDict(
            (name, res) for name, res in results.items() if isinstance(res, Mapping)
        )

    columns = [
        col
        for col in HEADLINE_METRICS
        if any(
            isinstance(res.get(col[1]), Mapping) and col[2] in res[col[1]]
            for res in per_dataset.values()
        )
    ]
    rows = []
    for name, res in per_dataset.items():
        row = [name or "-"]
        for _, task, metric in columns:
            value = res.get(task, {}).get(metric) if isinstance(res.get(task), Mapping) else None
            row.append(f"{float(value):.2f}" if value is not None else "-")
        rows.append(row)
    headers = ["dataset"] + [title for title, _, _ in columns]
    return tabulate(
        rows,
        headers=headers,
        tablefmt="pipe",
        disable_numparse=True,  # keep the 2-decimal strings as formatted
        colalign=("left",) + ("right",) * len(columns),
    )
