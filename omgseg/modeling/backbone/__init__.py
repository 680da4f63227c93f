"""Backbones (importing this registers ``OpenCLIPBackbone`` in Detectron2's BACKBONE_REGISTRY)."""
from .openclip_backbone import OpenCLIPBackbone

__all__ = ["OpenCLIPBackbone"]
