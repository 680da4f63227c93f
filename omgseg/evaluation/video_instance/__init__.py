"""Video instance metrics exactly as the official tools define them, and their evaluators.

* ``ytvis_ap``: YouTube-VIS AP / AR (youtubevos/cocoapi ``ytvoseval.py``) on pycocotools' COCOeval.
* ``davis_jf``: DAVIS-2017 semi-supervised J&F (davisvideochallenge/davis2017-evaluation).
* ``ytvis_evaluation`` / ``davis_evaluation``: the Detectron2 ``DatasetEvaluator``s for
  ``evaluator_type`` ``"ytvis"`` / ``"davis"`` and their evaluator-table builders.
"""
from .davis_evaluation import DAVISEvaluator, build_davis_evaluators
from .davis_jf import DAVIS_METRICS, evaluate_davis_sequence, summarize_davis
from .ytvis_ap import YTVIS_METRICS, YTVISeval, evaluate_ytvis
from .ytvis_evaluation import YTVISEvaluator, build_ytvis_evaluators

__all__ = [
    "DAVISEvaluator",
    "DAVIS_METRICS",
    "YTVISEvaluator",
    "YTVIS_METRICS",
    "YTVISeval",
    "build_davis_evaluators",
    "build_ytvis_evaluators",
    "evaluate_davis_sequence",
    "evaluate_ytvis",
    "summarize_davis",
]
