"""Official OMG-Seg head names <-> ours: every tensor, the parameter count, and the layer order."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from official_tsv import official_keys, official_state_dict
from omgseg.checkpoint.head import HeadWidths, build_head
from omgseg.checkpoint.official_omgseg import (
    NAME_RULES,
    convert_official_head,
    official_to_ours,
    ours_to_official,
    to_official_head,
)
from omgseg.modeling.transformer_decoder import OMGMaskDecoder
from omgseg.modeling.transformer_decoder.layers import MLP

L_WIDTHS = HeadWidths(
    backbone_channels=(192, 384, 768, 1536), text_dim=768, conv_dim=256, mask_dim=256,
    hidden_dim=256, num_queries=300, enc_layers=6, enc_dim_feedforward=1024,
    enc_heads_x_points=32, dec_layers=9, dim_feedforward=2048,
)


@pytest.fixture(scope="module")
def l_head():
    torch.manual_seed(0)
    return build_head(L_WIDTHS)


def test_every_official_name_maps_to_exactly_one_of_ours_and_back():
    keys = [name for name, _ in official_keys()]
    assert len(keys) == 310
    ours = [official_to_ours(k) for k in keys]
    assert None not in ours
    assert len(set(ours)) == 310  # one-to-one
    assert [ours_to_official(o) for o in ours] == keys
    compiled = [re.compile(re.escape(a).replace(r"\{i\}", r"\d+").replace(r"\{rest\}", ".+"))
                for a, _ in NAME_RULES]
    for k in keys:  # no name is claimed by two rules
        assert sum(bool(p.fullmatch(k)) for p in compiled) == 1, k
    # a few by hand
    assert official_to_ours("mask_embed.4.bias") == "mask_decoder.mask_embed.layers.2.bias"
    assert official_to_ours("transformer_decoder.layers.8.norms.0.weight") == (
        "mask_decoder.transformer_cross_attention_layers.8.norm.weight")
    assert official_to_ours("transformer_decoder.layers.8.norms.1.weight") == (
        "mask_decoder.transformer_self_attention_layers.8.norm.weight")
    assert official_to_ours("transformer_decoder.layers.8.norms.2.bias") == (
        "mask_decoder.transformer_ffn_layers.8.norm.bias")
    assert official_to_ours("transformer_decoder.layers.2.ffn.layers.0.0.weight") == (
        "mask_decoder.transformer_ffn_layers.2.linear1.weight")
    assert official_to_ours("transformer_decoder.post_norm.weight") == (
        "mask_decoder.decoder_norm.weight")
    assert official_to_ours("mask_embed.1.weight") is None  # a ReLU has no parameters
    assert official_to_ours("sem_seg_head.predictor.query_feat.weight") is None


def test_our_head_is_exactly_the_official_head(l_head):
    """Same 310 names (via the mapping), same shapes, 21,010,369 parameters (ConvNeXt-L)."""
    state = l_head.state_dict()
    assert len(state) == 310
    assert sum(p.numel() for p in l_head.parameters()) == 21_010_369
    expected = dict(official_keys())
    ours = {k: tuple(v.shape) for k, v in to_official_head(state, prefix="").items()}
    assert ours == expected


def test_input_convs_have_a_bias_initialised_like_mask2former(l_head):
    """1x1 conv WITH bias + GroupNorm; Xavier-uniform weight (gain 1), zero bias."""
    for i, in_ch in enumerate((1536, 768, 384)):
        conv = l_head["pixel_decoder"].input_convs[i].conv
        assert conv.bias is not None and torch.count_nonzero(conv.bias) == 0
        xavier_bound = math.sqrt(6.0 / (in_ch + 256))
        c2_bound = math.sqrt(3.0 / in_ch)  # c2_xavier_fill, the previous init
        assert c2_bound < conv.weight.abs().max() <= xavier_bound
    # the FPN convs keep no bias (GroupNorm follows), as in the official checkpoint
    assert l_head["pixel_decoder"].lateral_convs[0].conv.bias is None
    assert l_head["pixel_decoder"].output_convs[0].conv.bias is None


def test_widths_are_read_off_the_tensors():
    head = convert_official_head(official_state_dict("L"))
    assert HeadWidths.infer(head.state_dict) == L_WIDTHS
    assert HeadWidths.infer(head.state_dict).variant == "convnext_large"
    xxl = HeadWidths.infer(convert_official_head(official_state_dict("XXL")).state_dict)
    assert xxl.backbone_channels == (384, 768, 1536, 3072) and xxl.text_dim == 1024
    assert xxl.variant == "convnext_xxlarge"
    assert sum(p.numel() for p in build_head(xxl).parameters()) == 21_010_369 + 803_072


def _mha(q, k, v, w, prefix, nheads):
    """nn.MultiheadAttention's math on official tensors; [B, L, C] in and out."""
    c = q.shape[-1]
    out = F.multi_head_attention_forward(
        q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), c, nheads,
        w[prefix + "in_proj_weight"], w[prefix + "in_proj_bias"], None, None, False, 0.0,
        w[prefix + "out_proj.weight"], w[prefix + "out_proj.bias"],
        training=False, need_weights=False,
    )[0]
    return out.transpose(0, 1)


def test_decoder_layer_runs_the_official_order_with_the_mapped_norms():
    """mmdet Mask2FormerTransformerDecoderLayer: cross-attn -> norms.0 -> self-attn -> norms.1 ->
    FFN -> norms.2, computed here from the official names, equals our blocks after mapping."""
    c, heads, ffn = 32, 2, 64
    gen = torch.Generator().manual_seed(3)
    decoder = OMGMaskDecoder(
        in_channels=c, hidden_dim=c, num_queries=5, nheads=heads, dim_feedforward=ffn,
        dec_layers=1, pre_norm=False, mask_dim=c, text_dim=16, logit_scale=100.0,
        attn_mask_threshold=0.5,
    ).eval()
    ours = {k: torch.randn(v.shape, generator=gen) for k, v in decoder.state_dict().items()}
    official = to_official_head({"mask_decoder." + k: v for k, v in ours.items()}, prefix="")
    decoder.load_state_dict(ours)
    q, qpos = torch.randn(2, 5, c, generator=gen), torch.randn(2, 5, c, generator=gen)
    mem, pos = torch.randn(2, 7, c, generator=gen), torch.randn(2, 7, c, generator=gen)

    p = "transformer_decoder.layers.0."

    def norm(x, i):
        weight, bias = official[f"{p}norms.{i}.weight"], official[f"{p}norms.{i}.bias"]
        return F.layer_norm(x, (c,), weight, bias)

    def linear(x, name):
        return F.linear(x, official[p + name + ".weight"], official[p + name + ".bias"])

    x = norm(q + _mha(q + qpos, mem + pos, mem, official, p + "cross_attn.attn.", heads), 0)
    x = norm(x + _mha(x + qpos, x + qpos, x, official, p + "self_attn.attn.", heads), 1)
    hidden = F.relu(linear(x, "ffn.layers.0.0"))
    expected = norm(x + linear(hidden, "ffn.layers.1"), 2)

    with torch.no_grad():
        y = decoder.transformer_cross_attention_layers[0](q, mem, pos=pos, query_pos=qpos)
        y = decoder.transformer_self_attention_layers[0](y, query_pos=qpos)
        y = decoder.transformer_ffn_layers[0](y)
    torch.testing.assert_close(y, expected)


def test_mlp_indices_0_2_4_are_our_layers_0_1_2():
    """Official nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) == our MLP after mapping."""
    gen = torch.Generator().manual_seed(5)
    mlp = MLP(8, 8, 3, 3)
    ours = {k: torch.randn(v.shape, generator=gen) for k, v in mlp.state_dict().items()}
    mlp.load_state_dict(ours)
    as_head = {"mask_decoder.mask_embed." + k: v for k, v in ours.items()}
    official = to_official_head(as_head, prefix="")
    x = torch.randn(4, 8, generator=gen)
    ref = x
    for i in (0, 2, 4):
        ref = F.linear(ref, official[f"mask_embed.{i}.weight"], official[f"mask_embed.{i}.bias"])
        ref = F.relu(ref) if i < 4 else ref
    torch.testing.assert_close(mlp(x), ref)


def test_prefix_is_detected_and_unknown_names_are_reported():
    with_prefix = convert_official_head(official_state_dict("L"))
    without = convert_official_head(official_state_dict("L", prefix=""))
    assert with_prefix.prefix == "panoptic_head." and without.prefix == ""
    assert with_prefix.state_dict.keys() == without.state_dict.keys()
    assert len(with_prefix.state_dict) == 310 and with_prefix.unmapped == []
    mixed = official_state_dict("L")
    mixed["backbone.stem.0.weight"] = torch.zeros(1)
    mixed["panoptic_head.cls_embed"] = torch.zeros(1)
    assert sorted(convert_official_head(mixed).unmapped) == [
        "backbone.stem.0.weight", "panoptic_head.cls_embed"]
