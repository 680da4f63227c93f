"""Evaluator table by metadata ``evaluator_type`` and a results summary table."""
from .build import EVALUATOR_BUILDERS, build_evaluator, format_results_table

__all__ = ["EVALUATOR_BUILDERS", "build_evaluator", "format_results_table"]
