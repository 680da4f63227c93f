"""Official head -> Detectron2 checkpoint: every value on its counterpart, bad files refused."""
import os

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer

from official_tsv import official_state_dict
from omgseg.checkpoint import (
    CheckpointNotFoundError,
    NotAnOMGSegHeadError,
    UnreadableCheckpointError,
    convert_official_checkpoint,
)
from omgseg.checkpoint.head import HeadWidths, build_head

P = "panoptic_head."
# (official name without prefix, our name): checked value by value
SPOT_CHECKS = [
    ("transformer_decoder.layers.3.cross_attn.attn.in_proj_weight",
     "mask_decoder.transformer_cross_attention_layers.3.attn.in_proj_weight"),
    ("transformer_decoder.layers.5.self_attn.attn.out_proj.bias",
     "mask_decoder.transformer_self_attention_layers.5.attn.out_proj.bias"),
    ("mask_embed.4.weight", "mask_decoder.mask_embed.layers.2.weight"),
    ("cls_proj.4.bias", "mask_decoder.cls_proj.layers.2.bias"),
    ("transformer_decoder.layers.8.norms.0.weight",
     "mask_decoder.transformer_cross_attention_layers.8.norm.weight"),
    ("transformer_decoder.layers.8.norms.1.bias",
     "mask_decoder.transformer_self_attention_layers.8.norm.bias"),
    ("transformer_decoder.layers.8.norms.2.weight",
     "mask_decoder.transformer_ffn_layers.8.norm.weight"),
    ("transformer_decoder.layers.0.ffn.layers.1.weight",
     "mask_decoder.transformer_ffn_layers.0.linear2.weight"),
    ("transformer_decoder.post_norm.bias", "mask_decoder.decoder_norm.bias"),
    ("pixel_decoder.input_convs.2.conv.bias", "pixel_decoder.input_convs.2.conv.bias"),
    ("pos_linear.weight", "mask_decoder.pos_linear.weight"),
]


@pytest.mark.parametrize("variant,prefix", [("L", P), ("L", ""), ("XXL", P)])
def test_conversion_puts_every_tensor_on_its_counterpart(tmp_path, variant, prefix):
    official = official_state_dict(variant, prefix=prefix, seed=1)
    src, dst = tmp_path / "omg_seg.pth", tmp_path / "converted.pth"
    torch.save(official, src)
    report = convert_official_checkpoint(str(src), str(dst))
    assert report.prefix == prefix and report.num_tensors == 310
    assert report.diff.exact and len(report.diff.matched) == 310
    assert report.num_parameters == (21_010_369 if variant == "L" else 21_813_441)

    saved = torch.load(dst, weights_only=True)
    model = saved["model"]
    assert saved["matching_heuristics"] is False and saved["omgseg"]["head_only"] is True
    expected_variant = "convnext_large" if variant == "L" else "convnext_xxlarge"
    assert saved["omgseg"]["variant"] == expected_variant
    for theirs, ours in SPOT_CHECKS:
        assert torch.equal(model[ours], official[prefix + theirs]), (theirs, ours)
    # nothing lost, nothing duplicated: the multiset of values is the same
    assert sorted(round(float(v.sum()), 3) for v in model.values()) == sorted(
        round(float(v.sum()), 3) for v in official.values())

    head = build_head(HeadWidths.infer(model))
    head.load_state_dict(model, strict=True)
    # the converted file is an ordinary Detectron2 checkpoint
    other = build_head(HeadWidths.infer(model))
    DetectionCheckpointer(other).load(str(dst))
    for k, v in other.state_dict().items():
        assert torch.equal(v, model[k]), k


def test_an_existing_output_is_kept_unless_force(tmp_path):
    src, dst = tmp_path / "omg.pth", tmp_path / "out.pth"
    torch.save(official_state_dict("L"), src)
    dst.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--force"):
        convert_official_checkpoint(str(src), str(dst))
    assert dst.read_bytes() == b"precious"
    convert_official_checkpoint(str(src), str(dst), force=True)
    assert len(torch.load(dst, weights_only=True)["model"]) == 310
    assert sorted(os.listdir(tmp_path)) == ["omg.pth", "out.pth"]  # no temp file left


def _refused(tmp_path, payload, error=NotAnOMGSegHeadError, match=None):
    src, dst = tmp_path / "input.pth", tmp_path / "out.pth"
    if isinstance(payload, bytes):
        src.write_bytes(payload)
    else:
        torch.save(payload, src)
    with pytest.raises(error, match=match) as info:
        convert_official_checkpoint(str(src), str(dst))
    assert str(src) in str(info.value)
    assert not dst.exists() and sorted(os.listdir(tmp_path)) == ["input.pth"]
    return str(info.value)


def test_a_mask2former_checkpoint_is_refused(tmp_path):
    m2f = {"model": {
        "backbone.res2.0.conv1.weight": torch.zeros(64, 64, 1, 1),
        "sem_seg_head.pixel_decoder.input_proj.0.0.weight": torch.zeros(256, 2048, 1, 1),
        "sem_seg_head.predictor.query_feat.weight": torch.zeros(100, 256),
    }, "__author__": "Mask2Former"}
    msg = _refused(tmp_path, m2f, match="not an official OMG-Seg head")
    assert "Mask2Former" in msg


def test_a_clip_checkpoint_is_refused(tmp_path):
    clip = {"visual.trunk.stem.0.weight": torch.zeros(8, 3, 4, 4), "logit_scale": torch.zeros(())}
    assert "OpenCLIP" in _refused(tmp_path, clip, match="not an official OMG-Seg head")


def test_a_head_missing_a_tensor_is_refused_naming_it(tmp_path):
    official = official_state_dict("L")
    del official[P + "transformer_decoder.layers.4.norms.2.bias"]
    msg = _refused(tmp_path, official, match="1 missing from the checkpoint")
    assert "panoptic_head.transformer_decoder.layers.4.norms.2.bias" in msg
    no_widths = official_state_dict("L")
    del no_widths[P + "cls_proj.4.weight"]
    assert "panoptic_head.cls_proj.4.weight" in _refused(tmp_path, no_widths, match="lacks")


def test_a_head_with_extra_or_reshaped_tensors_is_refused(tmp_path):
    extra = official_state_dict("L")
    extra[P + "cls_embed"] = torch.zeros(3)
    msg = _refused(tmp_path, extra, match="1 in the checkpoint but not in the model")
    assert "panoptic_head.cls_embed" in msg
    bad = official_state_dict("L")
    bad[P + "transformer_decoder.layers.2.ffn.layers.1.bias"] = torch.zeros(255)
    assert "layers.2.ffn.layers.1.bias" in _refused(tmp_path, bad, match="1 with another shape")


def test_truncated_non_torch_and_missing_files_are_refused(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(official_state_dict("L", seed=2), good)
    data = good.read_bytes()
    good.unlink()
    _refused(tmp_path, data[: len(data) // 2], error=UnreadableCheckpointError, match="truncated")
    _refused(tmp_path, b"model: not a checkpoint\n", error=UnreadableCheckpointError)
    with pytest.raises(CheckpointNotFoundError, match="nope.pth"):
        convert_official_checkpoint(str(tmp_path / "nope.pth"), str(tmp_path / "o.pth"))
