"""MSDeformAttnPixelDecoder: shapes (images, frames, odd sizes), fp32 under autocast, gradients,
registry build and the parameter count at the official widths (CPU)."""

import math

import pytest
import torch

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec

from omgseg.config import add_omgseg_config
from omgseg.layers.ms_deform_attn import MSDeformAttn
from omgseg.modeling.build import PIXEL_DECODER_REGISTRY, build_pixel_decoder
from omgseg.modeling.pixel_decoder.msdeformattn import MSDeformAttnPixelDecoder

TINY_CHANNELS = {"res2": 8, "res3": 16, "res4": 24, "res5": 32}
STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
# Official ConvNeXt-L widths.
OFFICIAL_CHANNELS = {"res2": 192, "res3": 384, "res4": 768, "res5": 1536}
# Sum of the panoptic_head.pixel_decoder.* shapes in research/omgseg-official-head-keys.tsv.
OFFICIAL_NUM_PARAMS = 5_790_144


def _shapes(channels):
    return {k: ShapeSpec(channels=c, stride=STRIDES[k]) for k, c in channels.items()}


def _tiny_decoder(**overrides) -> MSDeformAttnPixelDecoder:
    kwargs = dict(
        input_shape=_shapes(TINY_CHANNELS),
        transformer_in_features=["res3", "res4", "res5"],
        conv_dim=32,
        mask_dim=16,
        norm="GN",
        transformer_dropout=0.0,
        transformer_nheads=2,
        transformer_dim_feedforward=64,
        transformer_enc_layers=2,
        transformer_n_points=2,
        common_stride=4,
        deform_attn_impl="pytorch",
    )
    kwargs.update(overrides)
    return MSDeformAttnPixelDecoder(**kwargs)


def _features(n, height, width, channels=TINY_CHANNELS, ceil=True, seed=0):
    """Backbone-like maps of an H x W input: size ceil (or floor) of H / stride."""
    g = torch.Generator().manual_seed(seed)
    rnd = math.ceil if ceil else math.floor
    return {
        k: torch.randn(n, c, rnd(height / STRIDES[k]), rnd(width / STRIDES[k]), generator=g)
        for k, c in channels.items()
    }


def _check_shapes(decoder, feats):
    mask_features, multi_scale = decoder.forward_features(feats)
    n = feats["res2"].shape[0]
    assert mask_features.shape == (n, decoder.mask_dim, *feats["res2"].shape[-2:])
    assert len(multi_scale) == 3
    for out, name in zip(multi_scale, ["res5", "res4", "res3"]):  # strides 32, 16, 8
        assert out.shape == (n, decoder.conv_dim, *feats[name].shape[-2:])
    for t in (mask_features, *multi_scale):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    return mask_features, multi_scale


@pytest.mark.parametrize(
    "n, height, width, ceil, conv_dim",
    # A 32 x 32 input has a 1 x 1 res5 map: GroupNorm(32) then needs >= 2 channels per group.
    [(1, 64, 96, True, 32), (2, 70, 90, True, 32), (2, 70, 90, False, 32), (1, 32, 32, True, 64)],
)
def test_shapes_images_frames_and_odd_sizes(n, height, width, ceil, conv_dim):
    torch.manual_seed(0)
    decoder = _tiny_decoder(conv_dim=conv_dim).eval()
    with torch.no_grad():
        _check_shapes(decoder, _features(n, height, width, ceil=ceil))


def test_frames_are_independent():
    """N = B*T frames: each frame's output equals running it alone."""
    torch.manual_seed(0)
    decoder = _tiny_decoder().eval()
    feats = _features(2, 70, 90)
    with torch.no_grad():
        mask2, ms2 = decoder.forward_features(feats)
        mask1, ms1 = decoder.forward_features({k: v[1:] for k, v in feats.items()})
    torch.testing.assert_close(mask2[1:], mask1, atol=1e-5, rtol=1e-4)
    for a, b in zip(ms2, ms1):
        torch.testing.assert_close(a[1:], b, atol=1e-5, rtol=1e-4)


def test_fp32_under_autocast_and_half_inputs():
    torch.manual_seed(0)
    decoder = _tiny_decoder(transformer_enc_layers=1).eval()
    feats = {k: v.bfloat16() for k, v in _features(1, 64, 64).items()}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _check_shapes(decoder, feats)


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    decoder = _tiny_decoder().train()
    feats = _features(2, 64, 96)
    mask_features, multi_scale = decoder.forward_features(feats)
    loss = mask_features.square().mean() + sum(m.square().mean() for m in multi_scale)
    loss.backward()
    missing = [name for name, p in decoder.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    for name, p in decoder.named_parameters():
        assert torch.isfinite(p.grad).all(), name
    # The deformable parts are really trained (offsets / weights start at zero weight).
    attn = decoder.encoder.layers[0].self_attn
    assert attn.sampling_offsets.weight.grad.abs().sum() > 0
    assert attn.attention_weights.weight.grad.abs().sum() > 0
    # The position / level embeddings only enter through the query, i.e. through those two
    # zero-initialised linears: their gradient is zero at init and non-zero once they move.
    assert torch.all(decoder.level_encoding.weight.grad == 0)
    decoder.zero_grad()
    with torch.no_grad():
        for layer in decoder.encoder.layers:
            layer.self_attn.sampling_offsets.weight.normal_(std=0.01)
            layer.self_attn.attention_weights.weight.normal_(std=0.01)
    mask_features, multi_scale = decoder.forward_features(feats)
    (mask_features.square().mean() + sum(m.square().mean() for m in multi_scale)).backward()
    assert decoder.level_encoding.weight.grad.abs().sum() > 0


def test_official_widths_parameter_count_and_names():
    cfg = get_cfg()
    add_omgseg_config(cfg)  # official defaults: 256 wide, 6 layers, 8 heads, 4 points, FFN 1024
    decoder = build_pixel_decoder(cfg, _shapes(OFFICIAL_CHANNELS))
    num_params = sum(p.numel() for p in decoder.parameters())
    assert num_params == OFFICIAL_NUM_PARAMS
    assert 5.7e6 < num_params < 5.9e6
    keys = set(decoder.state_dict())
    for key in [
        "input_convs.0.conv.weight",
        "input_convs.0.conv.bias",
        "input_convs.2.gn.bias",
        "encoder.layers.5.self_attn.sampling_offsets.weight",
        "encoder.layers.5.self_attn.attention_weights.bias",
        "encoder.layers.5.self_attn.value_proj.weight",
        "encoder.layers.5.self_attn.output_proj.weight",
        "encoder.layers.5.ffn.layers.0.0.weight",
        "encoder.layers.5.ffn.layers.1.weight",
        "encoder.layers.5.norms.1.weight",
        "level_encoding.weight",
        "lateral_convs.0.conv.weight",
        "output_convs.0.gn.weight",
        "mask_feature.weight",
    ]:
        assert key in keys, key
    assert decoder.input_convs[0].conv.in_channels == 1536  # levels run coarsest first
    assert decoder.level_encoding.weight.shape == (3, 256)
    assert (
        decoder.output_convs[0].conv.kernel_size == (3, 3)
        and decoder.output_convs[0].conv.bias is None
    )
    attn = decoder.encoder.layers[0].self_attn
    assert (attn.n_heads, attn.n_levels, attn.n_points) == (8, 3, 4)


def test_registry_build_from_cfg():
    assert PIXEL_DECODER_REGISTRY.get("MSDeformAttnPixelDecoder") is MSDeformAttnPixelDecoder
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.MODEL.OMG.CONVS_DIM = 32
    cfg.MODEL.OMG.MASK_DIM = 16
    cfg.MODEL.OMG.ENC_LAYERS = 1
    cfg.MODEL.OMG.ENC_HEADS = 2
    cfg.MODEL.OMG.ENC_POINTS = 2
    cfg.MODEL.OMG.ENC_DIM_FEEDFORWARD = 64
    cfg.MODEL.OMG.DEFORM_ATTN_IMPL = "pytorch"
    shapes = _shapes(TINY_CHANNELS)
    shapes["stem"] = ShapeSpec(channels=3, stride=2)  # not in IN_FEATURES: ignored
    decoder = build_pixel_decoder(cfg, shapes)
    assert isinstance(decoder, MSDeformAttnPixelDecoder)
    assert len(decoder.encoder.layers) == 1
    assert decoder.fpn_in_features == ["res2"]
    assert all(m.impl == "pytorch" for m in decoder.modules() if isinstance(m, MSDeformAttn))
    with torch.no_grad():
        _check_shapes(decoder.eval(), _features(1, 64, 96))
    cfg.MODEL.OMG.IN_FEATURES = ["res2", "res3", "res4", "res6"]
    with pytest.raises(ValueError):
        build_pixel_decoder(cfg, shapes)


def test_common_stride_8_uses_encoder_output():
    torch.manual_seed(0)
    decoder = _tiny_decoder(common_stride=8, transformer_enc_layers=1).eval()
    assert len(decoder.lateral_convs) == 0
    feats = _features(1, 64, 96)
    with torch.no_grad():
        mask_features, multi_scale = decoder.forward_features(feats)
    assert mask_features.shape == (1, 16, *feats["res3"].shape[-2:])
    assert len(multi_scale) == 3


def _grid_sample_core(value, spatial_shapes, locations, weights):
    """The previous deformable-attention core (per-level grid_sample + weighted sum)."""
    n, _, heads, dh = value.shape
    _, lq, _, levels, points, _ = locations.shape
    shapes = [tuple(int(v) for v in hw) for hw in spatial_shapes]
    per_level = value.split([h * w for h, w in shapes], dim=1)
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        v = per_level[lvl].permute(0, 2, 3, 1).reshape(n * heads, dh, h, w)
        g = (2 * locations[:, :, :, lvl] - 1).transpose(1, 2).flatten(0, 1)
        sampled.append(torch.nn.functional.grid_sample(v, g, align_corners=False))
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    w = weights.transpose(1, 2).reshape(n * heads, 1, lq, levels * points)
    return (stacked * w).sum(-1).view(n, heads * dh, lq).transpose(1, 2)


def test_forward_equals_previous_deformable_core(monkeypatch):
    """Two frames of an odd-sized input through 3 encoder layers: the embedding-bag core gives
    the outputs of the previous grid_sample core."""
    import omgseg.layers.ms_deform_attn as msda

    torch.manual_seed(0)
    decoder = _tiny_decoder(transformer_enc_layers=3).eval()
    feats = _features(2, 70, 90, seed=3)
    with torch.no_grad():
        got = decoder.forward_features(feats)
        monkeypatch.setattr(msda, "ms_deform_attn_core_pytorch", _grid_sample_core)
        want = decoder.forward_features(feats)
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(got[1], want[1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
