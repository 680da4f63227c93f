"""Prompt-driven segmentation metrics: the COCO-SAM interactive mIoU."""
from .miou import PromptMIoUEvaluator, mask_iou, summarize_prompt_ious

__all__ = ["PromptMIoUEvaluator", "mask_iou", "summarize_prompt_ious"]
