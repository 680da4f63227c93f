"""Random official OMG-Seg head state dicts built from the official key list (tests/fixtures)."""
import os
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

TSV = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "fixtures", "omgseg-official-head-keys.tsv"
)
PREFIX = "panoptic_head."

# ConvNeXt-XXL differs from ConvNeXt-L in these shapes (header of the TSV).
XXL_SHAPES = {
    "pixel_decoder.input_convs.0.conv.weight": (256, 3072, 1, 1),
    "pixel_decoder.input_convs.1.conv.weight": (256, 1536, 1, 1),
    "pixel_decoder.input_convs.2.conv.weight": (256, 768, 1, 1),
    "pixel_decoder.lateral_convs.0.conv.weight": (256, 384, 1, 1),
    "cls_proj.4.weight": (1024, 256),
    "cls_proj.4.bias": (1024,),
}


def official_keys() -> List[Tuple[str, Tuple[int, ...]]]:
    """(name without prefix, shape) of the 310 official ConvNeXt-L head tensors, in file order."""
    out = []
    with open(TSV) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, shape = line.rstrip("\n").split("\t")
            assert name.startswith(PREFIX), name
            out.append((name[len(PREFIX):], tuple(int(s) for s in shape.split("x"))))
    return out


def official_state_dict(
    variant: str = "L", prefix: str = PREFIX, seed: int = 0
) -> Dict[str, torch.Tensor]:
    """An OrderedDict like ``omg_seg_conv{l,xxl}.pth``: every tensor random and distinct."""
    gen = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for name, shape in official_keys():
        if variant == "XXL":
            shape = XXL_SHAPES.get(name, shape)
        out[prefix + name] = torch.randn(shape, generator=gen)
    return out
