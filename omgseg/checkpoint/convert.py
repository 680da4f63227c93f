"""Official OMG-Seg head file -> Detectron2 checkpoint of this model (head only).

The file is checked tensor by tensor against the head ``OMGSeg`` builds for the widths read off
the file (ConvNeXt-L, XXL or any other): it is converted only when nothing is missing, nothing is
left over and every shape matches.
"""
import os
from dataclasses import dataclass

from .compare import StateDictDiff, compare_state_dicts
from .errors import NotAnOMGSegHeadError
from .format import FORMAT_VERSION, FORMAT_VERSION_KEY
from .head import HeadWidths, build_head
from .io import atomic_torch_save, read_checkpoint, state_dict_from
from .official_omgseg import (
    OFFICIAL_PREFIX,
    convert_official_head,
    ours_to_official,
    to_official_head,
)

__all__ = ["ConversionReport", "convert_official_checkpoint", "AUTHOR"]

AUTHOR = "OMG-Seg official release (lxtGH/OMG-Seg), converted by tools/convert_omgseg_official.py"

_EXAMPLE_NAME = OFFICIAL_PREFIX + "transformer_decoder.layers.0.cross_attn.attn.in_proj_weight"


@dataclass
class ConversionReport:
    """What was converted: source / output paths, official prefix, tensor and parameter counts,
    the inferred widths and the comparison with the head this repository builds."""

    source: str
    output: str
    prefix: str
    num_tensors: int
    num_parameters: int
    widths: HeadWidths
    diff: StateDictDiff

    def format(self) -> str:
        w = self.widths
        if w.variant:
            variant = f"{w.variant} (build the model with {w.config_file})"
        else:
            variant = (
                f"custom widths: backbone channels {list(w.backbone_channels)}, text dim "
                f"{w.text_dim}, hidden dim {w.hidden_dim}, {w.num_queries} queries"
            )
        d = self.diff
        return "\n".join(
            [
                f"Converted {self.source} -> {self.output}",
                f"  official head: {self.num_tensors} tensors, {self.num_parameters:,} parameters, "
                f"prefix {self.prefix!r}",
                f"  variant: {variant}",
                f"  against the head this repository builds for these widths: {len(d.matched)} "
                f"matched, {len(d.missing)} missing, {len(d.unexpected)} unexpected, "
                f"{len(d.mismatched)} with another shape",
                "  head only: the backbone weights come from OpenCLIP (MODEL.OMG.CLIP.PRETRAINED)",
            ]
        )


def _what_it_looks_like(names) -> str:
    if any(n.startswith("sem_seg_head.") for n in names):
        return " It looks like a Detectron2 Mask2Former checkpoint."
    if any(n.startswith(("visual.", "transformer.resblocks.", "text.")) for n in names):
        return " It looks like an OpenCLIP (CLIP) checkpoint."
    if any(n.startswith("mask_decoder.") for n in names):
        return (
            " It is already in this repository's layout: use it as MODEL.WEIGHTS directly."
        )
    return ""


def convert_official_checkpoint(src: str, dst: str, *, force: bool = False) -> ConversionReport:
    """Convert the official head in ``src`` and write it to ``dst`` (temp file + rename).

    Raises:
        FileExistsError: ``dst`` exists and ``force`` is False.
        CheckpointNotFoundError / UnreadableCheckpointError: ``src`` is missing or unreadable.
        NotAnOMGSegHeadError: ``src`` is not a complete official OMG-Seg head (the message says
            what is missing or left over).
    """
    if os.path.isdir(dst):
        raise IsADirectoryError(f"{dst} is a folder; give the path of the file to write")
    if os.path.exists(dst) and not force:
        raise FileExistsError(f"{dst} already exists; pass --force to overwrite it")
    state_dict = state_dict_from(read_checkpoint(src), src)
    names = list(state_dict)
    if any(n.startswith("mask_decoder.") for n in names):
        raise NotAnOMGSegHeadError(
            f"{src} is not an official OMG-Seg head.{_what_it_looks_like(names)}"
        )
    head = convert_official_head(state_dict)
    if not head.state_dict:
        raise NotAnOMGSegHeadError(
            f"{src} is not an official OMG-Seg head: none of its {len(names)} tensors has a head "
            f"name such as {_EXAMPLE_NAME} (its names look like {', '.join(names[:3])})."
            + _what_it_looks_like(names)
        )
    try:
        widths = HeadWidths.infer(head.state_dict)
    except KeyError as e:
        missing = [head.prefix + (ours_to_official(k) or k) for k in e.args[0]]
        raise NotAnOMGSegHeadError(
            f"{src} is not a complete official OMG-Seg head: it lacks {', '.join(missing)}"
            + _what_it_looks_like(names)
        ) from None

    expected = build_head(widths, device="meta").state_dict()  # names and shapes
    try:
        expected_official = to_official_head(expected, prefix=head.prefix)
    except KeyError as e:  # e.g. conv_dim != hidden_dim adds projections the official head lacks
        raise NotAnOMGSegHeadError(
            f"{src} has head widths the official layout cannot hold: {e}"
        ) from None
    diff = compare_state_dicts(state_dict, expected_official)
    if not diff.exact:
        raise NotAnOMGSegHeadError(
            f"{src} does not match the OMG-Seg head for its widths "
            f"({widths.variant or 'custom'}):\n{diff.summary(max_names=5)}"
        )

    converted = {k: head.state_dict[k].detach().contiguous() for k in expected}
    payload = {
        "model": converted,
        "__author__": AUTHOR,
        "matching_heuristics": False,
        FORMAT_VERSION_KEY: FORMAT_VERSION,
        "omgseg": {
            "head_only": True,
            "source": os.path.basename(src),
            "variant": widths.variant,
            "config_file": widths.config_file,
            "widths": widths.as_dict(),
        },
    }
    atomic_torch_save(payload, dst)
    return ConversionReport(
        source=src,
        output=dst,
        prefix=head.prefix,
        num_tensors=len(converted),
        num_parameters=sum(t.numel() for t in converted.values()),
        widths=widths,
        diff=diff,
    )
