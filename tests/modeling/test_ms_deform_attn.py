"""Multi-scale deformable attention: PyTorch core vs. an explicit bilinear reference, gradients,
initialisation, shapes and the fused-kernel dispatch (CPU only)."""

import logging
import math
import sys
import types

import pytest
import torch
import torch.nn.functional as F

import omgseg.layers.ms_deform_attn as msda
from omgseg.layers.ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn_core_pytorch,
    multi_scale_deformable_attention,
)


def _reference_attention(value, spatial_shapes, locations, weights):
    """Loop-by-loop bilinear sampling, pixel centres at (i + 0.5) / size, zeros outside the map.

    value [N, S, M, Dh], spatial_shapes [[h, w], ...], locations [N, Lq, M, L, P, 2] (x, y),
    weights [N, Lq, M, L, P] -> [N, Lq, M * Dh] (float64).
    """
    value = value.double()
    n_batch, _, heads, dh = value.shape
    _, lq, _, levels, points, _ = locations.shape
    starts, total = [], 0
    for h, w in spatial_shapes:
        starts.append(total)
        total += h * w
    out = torch.zeros(n_batch, lq, heads, dh, dtype=torch.float64)
    for n in range(n_batch):
        for q in range(lq):
            for m in range(heads):
                for lvl in range(levels):
                    h, w = spatial_shapes[lvl]
                    for p in range(points):
                        px = float(locations[n, q, m, lvl, p, 0]) * w - 0.5
                        py = float(locations[n, q, m, lvl, p, 1]) * h - 0.5
                        x0, y0 = math.floor(px), math.floor(py)
                        sample = torch.zeros(dh, dtype=torch.float64)
                        for yi in (y0, y0 + 1):
                            for xi in (x0, x0 + 1):
                                if 0 <= xi < w and 0 <= yi < h:
                                    corner = (1 - abs(px - xi)) * (1 - abs(py - yi))
                                    sample += corner * value[n, starts[lvl] + yi * w + xi, m]
                        out[n, q, m] += float(weights[n, q, m, lvl, p]) * sample
    return out.reshape(n_batch, lq, heads * dh)


def _random_inputs(
    shapes, n=2, lq=5, heads=2, dh=3, points=3, lo=-0.3, hi=1.3, dtype=torch.float32, seed=0
):
    g = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in shapes)
    levels = len(shapes)
    value = torch.randn(n, s, heads, dh, generator=g, dtype=dtype)
    locations = lo + (hi - lo) * torch.rand(
        n, lq, heads, levels, points, 2, generator=g, dtype=dtype
    )
    weights = torch.rand(n, lq, heads, levels, points, generator=g, dtype=dtype)
    weights = weights / weights.sum(dim=(-1, -2), keepdim=True)
    return value, torch.tensor(shapes, dtype=torch.long), locations, weights


def test_core_matches_explicit_bilinear_reference():
    shapes = [(4, 5), (3, 2), (1, 3)]
    value, spatial_shapes, locations, weights = _random_inputs(shapes)
    # Some points exactly on pixel centres, on the outer edges and far outside.
    locations[0, 0, 0, 0, 0] = torch.tensor([0.5 / 5, 1.5 / 4])
    locations[0, 0, 0, 0, 1] = torch.tensor([0.0, 1.0])
    locations[1, 1, 1, 2, 2] = torch.tensor([-2.0, 3.0])
    assert ((locations < 0) | (locations > 1)).any()
    out = ms_deform_attn_core_pytorch(value, spatial_shapes, locations, weights)
    ref = _reference_attention(value, shapes, locations, weights)
    assert out.shape == (2, 5, 2 * 3)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


def _grid_sample_core(value, spatial_shapes, locations, weights):
    """The previous core (per-level ``F.grid_sample`` + stacked weighted sum), kept as reference."""
    n, _, heads, dh = value.shape
    _, lq, _, levels, points, _ = locations.shape
    shapes = [tuple(int(v) for v in hw) for hw in spatial_shapes]
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        v = per_level[lvl].permute(0, 2, 3, 1).reshape(n * heads, dh, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    w = weights.transpose(1, 2).reshape(n * heads, 1, lq, levels * points)
    return (stacked * w).sum(-1).view(n, heads * dh, lq).transpose(1, 2)


def test_core_equals_grid_sample_formulation_values_and_gradients():
    # Official widths per head (Dh 32, 8 heads, 3 levels, 4 points), two frames, 30% of the
    # samples outside their map.
    shapes = [(3, 5), (6, 9), (11, 17)]
    value, spatial_shapes, locations, weights = _random_inputs(
        shapes, n=2, lq=40, heads=8, dh=32, points=4, lo=-0.2, hi=1.2, seed=3
    )
    outputs, grads = [], []
    for core in (ms_deform_attn_core_pytorch, _grid_sample_core):
        leaves = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
        out = core(leaves[0], spatial_shapes, leaves[1], leaves[2])
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outputs.append(out.detach())
        grads.append([t.grad for t in leaves])
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_core_pixel_centre_reads_the_pixel():
    # One level, one head, one point at the centre of pixel (row 1, col 2) of a 3x4 map.
    value = torch.arange(12.0).view(1, 12, 1, 1)
    loc = torch.tensor([(2 + 0.5) / 4, (1 + 0.5) / 3]).view(1, 1, 1, 1, 1, 2)
    out = ms_deform_attn_core_pytorch(value, torch.tensor([[3, 4]]), loc, torch.ones(1, 1, 1, 1, 1))
    assert out.item() == pytest.approx(1 * 4 + 2)


def test_core_nan_location_propagates_instead_of_indexing_out_of_range():
    value, spatial_shapes, locations, weights = _random_inputs([(3, 4), (2, 2)], n=2, lq=2)
    locations[1, 0, 0, 1, 0, 0] = float("nan")  # frame 1, query 0, head 0
    out = ms_deform_attn_core_pytorch(value, spatial_shapes, locations, weights)
    assert torch.isnan(out[1, 0, :3]).all()
    assert torch.isfinite(out[1, 0, 3:]).all() and torch.isfinite(out[0]).all()


def test_core_gradcheck_float64():
    value, spatial_shapes, locations, weights = _random_inputs(
        [(3, 4), (2, 3)],
        n=1,
        lq=2,
        heads=2,
        dh=2,
        points=2,
        lo=0.05,
        hi=0.95,
        dtype=torch.float64,
        seed=1,
    )
    value.requires_grad_(True)
    locations.requires_grad_(True)
    weights.requires_grad_(True)

    def fn(v, loc, w):
        return ms_deform_attn_core_pytorch(v, spatial_shapes, loc, w)

    assert torch.autograd.gradcheck(fn, (value, locations, weights), eps=1e-6, atol=1e-5)
    fn(value, locations, weights).sum().backward()
    for t in (value, locations, weights):
        assert t.grad is not None and t.grad.abs().sum() > 0


def _expected_radial_offsets(heads, levels, points):
    expected = torch.zeros(heads, levels, points, 2)
    for k in range(heads):
        angle = 2 * math.pi * k / heads
        d = torch.tensor([math.cos(angle), math.sin(angle)])
        d = d / d.abs().max()
        for p in range(points):
            expected[k, :, p] = d * (p + 1)
    return expected


def test_init_uniform_weights_and_radial_offsets():
    torch.manual_seed(0)
    heads, levels, points = 8, 3, 4
    attn = MSDeformAttn(d_model=32, n_levels=levels, n_heads=heads, n_points=points)
    query = torch.randn(2, 7, 32)
    weights = attn.attention_weights(query).view(2, 7, heads, levels * points).softmax(-1)
    torch.testing.assert_close(weights, torch.full_like(weights, 1.0 / (levels * points)))
    offsets = attn.sampling_offsets(query).view(2, 7, heads, levels, points, 2)
    expected = _expected_radial_offsets(heads, levels, points)
    torch.testing.assert_close(offsets, expected.expand_as(offsets), atol=1e-6, rtol=0)
    # Head 0 points right, head 1 diagonally (1, 1), head 2 down; the last point is P pixels out.
    torch.testing.assert_close(offsets[0, 0, 1, 0, 0], torch.tensor([1.0, 1.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(offsets[0, 0, 2, 0, -1], torch.tensor([0.0, 4.0]), atol=1e-6, rtol=0)
    assert torch.all(attn.attention_weights.weight == 0) and torch.all(
        attn.attention_weights.bias == 0
    )
    assert torch.all(attn.value_proj.bias == 0) and torch.all(attn.output_proj.bias == 0)


def test_module_at_init_samples_radial_pixels():
    # Identity projections: the output is the mean of the samples (p + 1) pixels along each
    # head's direction, offsets normalised by (w, h) of each level.
    heads, levels, points, d = 2, 2, 2, 4
    shapes = [(4, 5), (2, 3)]
    attn = MSDeformAttn(d_model=d, n_levels=levels, n_heads=heads, n_points=points, impl="pytorch")
    with torch.no_grad():
        for proj in (attn.value_proj, attn.output_proj):
            proj.weight.copy_(torch.eye(d))
    torch.manual_seed(0)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(1, s, d)
    query = torch.randn(1, 3, d)
    ref = torch.rand(1, 3, levels, 2)
    out = attn(query, ref, value, torch.tensor(shapes), torch.tensor([0, 20]))

    expected_offsets = _expected_radial_offsets(heads, levels, points)  # [M, L, P, 2] pixels
    wh = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32)  # [L, 2]
    locations = (
        ref[:, :, None, :, None, :]
        + expected_offsets[None, None] / wh[None, None, None, :, None, :]
    )
    weights = torch.full((1, 3, heads, levels, points), 1.0 / (levels * points))
    expected = _reference_attention(value.view(1, s, heads, d // heads), shapes, locations, weights)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_module_output_shapes_and_options():
    torch.manual_seed(0)
    shapes = torch.tensor([[6, 7], [3, 4], [2, 2]])
    s = int((shapes[:, 0] * shapes[:, 1]).sum())
    start = torch.tensor([0, 42, 54])
    attn = MSDeformAttn(d_model=32, n_levels=3, n_heads=4, n_points=2)
    query, value = torch.randn(2, 9, 32), torch.randn(2, s, 32)
    ref = torch.rand(2, 9, 3, 2)
    out = attn(query, ref, value, shapes, start)
    assert out.shape == (2, 9, 32)
    # "auto" on CPU is the PyTorch path.
    attn_pt = MSDeformAttn(d_model=32, n_levels=3, n_heads=4, n_points=2, impl="pytorch")
    attn_pt.load_state_dict(attn.state_dict())
    torch.testing.assert_close(attn_pt(query, ref, value, shapes, start), out)
    # Box reference points and a padding mask.
    boxes = torch.cat((ref, torch.full_like(ref, 0.2)), dim=-1)
    mask = torch.zeros(2, s, dtype=torch.bool)
    mask[:, -4:] = True
    assert attn(query, boxes, value, shapes, start, padding_mask=mask).shape == (2, 9, 32)
    with pytest.raises(ValueError):
        MSDeformAttn(d_model=30, n_heads=4)
    with pytest.raises(ValueError):
        MSDeformAttn(d_model=32, n_heads=4, impl="cuda")


def test_cpu_auto_never_tries_fused(monkeypatch):
    def boom():
        raise AssertionError("the fused kernel must only be looked up for CUDA input")

    monkeypatch.setattr(msda, "_resolve_fused_op", boom)
    value, spatial_shapes, locations, weights = _random_inputs([(2, 3)], n=1, lq=2)
    out = multi_scale_deformable_attention(
        value, spatial_shapes, torch.tensor([0]), locations, weights, impl="auto"
    )
    assert out.shape == (1, 2, 6)
    with pytest.raises(ValueError):
        multi_scale_deformable_attention(
            value, spatial_shapes, torch.tensor([0]), locations, weights, impl="x"
        )


def test_fused_resolution_without_kernels(monkeypatch, caplog):
    monkeypatch.setattr(msda, "_FUSED_RESOLVED", False)
    monkeypatch.setattr(msda, "_FUSED_OP", None)
    monkeypatch.setitem(sys.modules, "MultiScaleDeformableAttention", None)  # import -> ImportError
    monkeypatch.setitem(sys.modules, "mmcv", None)
    with caplog.at_level(logging.INFO, logger=msda.__name__):
        assert msda._resolve_fused_op() is None
        assert msda._resolve_fused_op() is None
    assert len([r for r in caplog.records if "PyTorch core" in r.getMessage()]) == 1


def test_fused_extension_wrapper_plumbing(monkeypatch, caplog):
    """A fake ``MultiScaleDeformableAttention`` module: forward/backward reach it with the
    kernel's argument order and the autograd wrapper returns its gradients."""
    calls = {"forward": 0, "backward": 0}

    def ms_deform_attn_forward(value, shapes, start, locations, weights, step):
        calls["forward"] += 1
        assert step >= 1 and value.shape[0] % step == 0 and start.dtype == torch.long
        return ms_deform_attn_core_pytorch(value, shapes, locations, weights)

    def ms_deform_attn_backward(value, shapes, start, locations, weights, grad_output, step):
        calls["backward"] += 1
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in (value, locations, weights)]
            out = ms_deform_attn_core_pytorch(leaves[0], shapes, leaves[1], leaves[2])
            return torch.autograd.grad(out, leaves, grad_output)

    fake = types.ModuleType("MultiScaleDeformableAttention")
    fake.ms_deform_attn_forward = ms_deform_attn_forward
    fake.ms_deform_attn_backward = ms_deform_attn_backward
    monkeypatch.setattr(msda, "_FUSED_RESOLVED", False)
    monkeypatch.setattr(msda, "_FUSED_OP", None)
    monkeypatch.setitem(sys.modules, "MultiScaleDeformableAttention", fake)
    with caplog.at_level(logging.INFO, logger=msda.__name__):
        op = msda._resolve_fused_op()
        assert op is not None and msda._resolve_fused_op() is op
    assert len([r for r in caplog.records if "MSDeformAttn" in r.getMessage()]) == 1

    shapes = [(3, 4), (2, 2)]
    value, spatial_shapes, locations, weights = _random_inputs(
        shapes, n=3, lq=4, lo=0.0, hi=1.0, seed=2
    )
    inputs = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    start = torch.tensor([0, 12])
    op(inputs[0], spatial_shapes, start, inputs[1], inputs[2]).square().sum().backward()
    refs = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    ms_deform_attn_core_pytorch(refs[0], spatial_shapes, refs[1], refs[2]).square().sum().backward()
    assert calls == {"forward": 1, "backward": 1}
    for got, want in zip(inputs, refs):
        torch.testing.assert_close(got.grad, want.grad)
    assert (
        msda._im2col_step(3) == 3 and msda._im2col_step(130) == 26 and msda._im2col_step(128) == 64
    )
