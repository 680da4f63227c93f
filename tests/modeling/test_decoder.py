"""Tests of the shared OMG-Seg mask decoder (tiny widths, CPU)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from omgseg.modeling.transformer_decoder import (
    OMGMaskDecoder,
    identity_self_attn_mask,
    mask_logits_to_attn_mask,
    mask_pool,
    resize_mask_features,
    tube_mask_logits,
    unblock_fully_masked_rows,
)
from omgseg.modeling.transformer_decoder import layers as layers_module
from omgseg.modeling.transformer_decoder.layers import (
    MATH_ATTENTION_MAX_SCORES,
    multi_head_attention,
    uses_math_attention,
)

HIDDEN, HEADS, LAYERS, QUERIES, TEXT_DIM, MASK_DIM = 32, 2, 3, 5, 16, 32
LEVEL_SIZES = [(2, 3), (4, 6), (8, 12)]  # strides 32, 16, 8 (coarsest first)
MASK_SIZE = (16, 24)
PROMPT_PARAMS = ("pb_embedding", "mask_tokens", "pos_linear")


def make_decoder(**overrides) -> OMGMaskDecoder:
    kwargs = dict(
        in_channels=HIDDEN,
        hidden_dim=HIDDEN,
        num_queries=QUERIES,
        nheads=HEADS,
        dim_feedforward=64,
        dec_layers=LAYERS,
        pre_norm=False,
        mask_dim=MASK_DIM,
        text_dim=TEXT_DIM,
        logit_scale=100.0,
        attn_mask_threshold=0.5,
        dropout=0.0,
    )
    kwargs.update(overrides)
    torch.manual_seed(0)
    return OMGMaskDecoder(**kwargs).eval()


def make_inputs(
    b: int, t: int, in_channels: int = HIDDEN, seed: int = 1, same_frames: bool = False
):
    g = torch.Generator().manual_seed(seed)
    nf = 1 if same_frames else t

    def rnd(c, hw):
        x = torch.randn(b, nf, c, *hw, generator=g)
        return x.expand(b, t, c, *hw).reshape(b * t, c, *hw)

    feats = [rnd(in_channels, hw) for hw in LEVEL_SIZES]
    mask_features = rnd(MASK_DIM, MASK_SIZE)
    return feats, mask_features


def text_bank(k: int = 4, s: int = 3, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(k, s, TEXT_DIM, generator=g), dim=-1)


def iter_predictions(out):
    yield out
    yield from out["aux_outputs"]


@pytest.mark.parametrize("t", [1, 2])
def test_output_shapes(t):
    b, k = 2, 4
    dec = make_decoder()
    feats, mf = make_inputs(b, t)
    with torch.no_grad():
        out = dec(feats, mf, t, text_bank(k), return_aux_outputs=True)
        assert dec(feats, mf, t, text_bank(k))["aux_outputs"] == []  # eval default: none
    assert out["pred_logits"].shape == (b, QUERIES, k + 1)
    assert out["pred_masks"].shape == (b, QUERIES, t, *MASK_SIZE)
    assert out["pred_objectness"].shape == (b, QUERIES, 1)
    assert out["query_embeds"].shape == (b, QUERIES, HIDDEN)
    assert len(out["aux_outputs"]) == LAYERS
    for aux in out["aux_outputs"]:
        assert set(aux) == {"pred_logits", "pred_masks", "pred_objectness"}
        assert aux["pred_logits"].shape == (b, QUERIES, k + 1)
        assert aux["pred_masks"].shape == (b, QUERIES, t, *MASK_SIZE)
        assert aux["pred_objectness"].shape == (b, QUERIES, 1)


def test_input_projection_and_pre_norm():
    dec = make_decoder(in_channels=24, pre_norm=True)
    assert all(isinstance(p, nn.Conv2d) for p in dec.input_proj)
    assert all(isinstance(p, nn.Identity) for p in make_decoder().input_proj)
    feats, mf = make_inputs(1, 2, in_channels=24)
    with torch.no_grad():
        out = dec(feats, mf, 2, text_bank())
    assert out["pred_masks"].shape == (1, QUERIES, 2, *MASK_SIZE)
    assert torch.isfinite(out["pred_logits"]).all()


def test_frame_count_must_divide_batch():
    dec = make_decoder()
    feats, mf = make_inputs(1, 3)
    with pytest.raises(ValueError, match="num_frames"):
        dec(feats, mf, 2, text_bank())


def test_void_column_zero_and_logits_bounded():
    dec = make_decoder()
    feats, mf = make_inputs(2, 2)
    with torch.no_grad():
        out = dec(feats, mf, 2, text_bank(), return_aux_outputs=True)
    for pred in iter_predictions(out):
        logits = pred["pred_logits"]
        assert torch.equal(logits[..., -1], torch.zeros_like(logits[..., -1]))
        assert logits.abs().max() <= 100.0 + 1e-3


def test_duplicate_synonym_leaves_logits_unchanged():
    dec = make_decoder()
    feats, mf = make_inputs(2, 1)
    text = text_bank(k=4, s=2)
    text_dup = torch.cat([text, text[:, :1], text.flip(1)], dim=1)  # [K, 5, D]
    with torch.no_grad():
        a = dec(feats, mf, 1, text)["pred_logits"]
        b = dec(feats, mf, 1, text_dup)["pred_logits"]
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_classify_hand_built_bank():
    dec = make_decoder(text_dim=3)
    e1, e2 = torch.eye(3)[0], torch.eye(3)[1]
    bank = torch.stack(
        [
            torch.stack([e1, (e1 + e2) / 2 ** 0.5]),  # class 0: best is (e1+e2)/sqrt2 -> cos 0.99
            torch.stack([-e1, e2]),  # class 1: best is e2 -> cos 0.8
        ]
    )
    feat = torch.tensor([[[3.0, 4.0, 0.0]]])  # [1, 1, 3], cos with e1 = 0.6, with e2 = 0.8
    logits = dec.classify(feat, bank * 7.0)  # the bank is normalised inside
    expected = torch.tensor([[[100 * max(0.6, 1.4 / 2 ** 0.5), 100 * 0.8, 0.0]]])
    torch.testing.assert_close(logits, expected)


def test_forward_logits_match_hand_computation_from_cls_features():
    dec = make_decoder()
    captured = []
    dec.cls_proj.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    feats, mf = make_inputs(2, 2)
    text = text_bank(k=3, s=2)
    with torch.no_grad():
        out = dec(feats, mf, 2, text)
    assert len(captured) == 1  # eval: only the final prediction is classified
    feat = captured[-1]  # class features of the final prediction, [B, Q, D]
    b, q = 1, 3
    f = feat[b, q] / feat[b, q].norm()
    for k in range(3):
        expected = 100.0 * max(float(f @ text[k, s]) for s in range(2))
        assert abs(float(out["pred_logits"][b, q, k]) - expected) < 1e-3


def test_identical_frames_give_identical_tube_frames():
    dec = make_decoder()
    feats, mf = make_inputs(2, 2, same_frames=True)
    with torch.no_grad():
        out = dec(feats, mf, 2, text_bank(), return_aux_outputs=True)
    for pred in iter_predictions(out):
        torch.testing.assert_close(pred["pred_masks"][:, :, 0], pred["pred_masks"][:, :, 1])


def test_unblock_fully_masked_rows():
    mask = torch.tensor(
        [
            [[True, True, True], [True, False, True]],
            [[False, False, False], [True, True, True]],
        ]
    )
    expected = torch.tensor(
        [
            [[False, False, False], [True, False, True]],
            [[False, False, False], [False, False, False]],
        ]
    )
    assert torch.equal(unblock_fully_masked_rows(mask), expected)


def test_mask_logits_to_attn_mask():
    # B=1, Q=2, T=2, 2x2 logits; query 0 is positive on the left column of frame 1 only,
    # query 1 is negative everywhere (fully blocked -> unblocked).
    logits = torch.full((1, 2, 2, 2, 2), -10.0, requires_grad=True)
    with torch.no_grad():
        logits[0, 0, 1, :, 0] = 10.0
        logits[0, 0, 0, 0, 0] = 0.1  # sigmoid 0.525: open at 0.5, blocked at 0.6
    m = mask_logits_to_attn_mask(logits, threshold=0.5)
    assert m.shape == (1, 1, 2, 2 * 2 * 2) and m.dtype == torch.bool and not m.requires_grad
    q0 = torch.tensor([False, True, True, True, False, True, False, True])  # (t, y, x) order
    assert torch.equal(m[0, 0, 0], q0)
    assert not m[0, 0, 1].any()
    assert mask_logits_to_attn_mask(logits, threshold=0.6)[0, 0, 0, 0]


def test_mask_pool():
    feats = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(1, 2, 3, 2, 2)  # B T C H W
    logits = -torch.ones(1, 2, 2, 2, 2)
    logits[0, 0, 0, 0, 0] = 1.0
    logits[0, 0, 1, 1, 1] = 1.0
    pooled = mask_pool(feats, logits)
    expected0 = (feats[0, 0, :, 0, 0] + feats[0, 1, :, 1, 1]) / 2
    torch.testing.assert_close(pooled[0, 0], expected0)
    assert torch.equal(pooled[0, 1], torch.zeros(3))  # empty mask
    # one frame (its own code path): frame 1 alone
    one = mask_pool(feats[:, 1:], logits[:, :, 1:])
    torch.testing.assert_close(one[0, 0], feats[0, 1, :, 1, 1])
    assert torch.equal(one[0, 1], torch.zeros(3))


def test_tube_mask_logits_one_and_several_frames():
    g = torch.Generator().manual_seed(3)
    embed = torch.randn(2, 5, 4, generator=g)
    for t in (1, 3):
        feats = torch.randn(2, t, 4, 6, 7, generator=g)
        got = tube_mask_logits(embed, feats)
        assert got.shape == (2, 5, t, 6, 7) and got.is_contiguous()
        torch.testing.assert_close(got, torch.einsum("bqc,btchw->bqthw", embed, feats))


def test_identity_self_attn_mask():
    m = identity_self_attn_mask(2, 3, 4, torch.device("cpu"))
    assert m.shape == (8, 3, 3) and m.dtype == torch.bool
    assert torch.equal(m[5], ~torch.eye(3, dtype=torch.bool))


def _prompt_outputs(dec, boxes, types, feats, mf, t, masked):
    content, pos = dec.encode_box_prompts(boxes, types)
    assert content.shape == pos.shape == (*boxes.shape[:2], HIDDEN)
    sa = None
    if masked:
        sa = identity_self_attn_mask(boxes.shape[0], boxes.shape[1], HEADS, boxes.device)
    with torch.no_grad():
        return dec(
            feats, mf, t, text_bank(), query_content=content, query_pos=pos, self_attn_mask=sa
        )


@pytest.mark.parametrize("masked", [True, False])
def test_location_queries_independent_under_identity_mask(masked):
    dec = make_decoder()
    feats, mf = make_inputs(1, 2)
    boxes = torch.tensor([[[0.3, 0.4, 0.2, 0.3], [0.7, 0.6, 0.4, 0.2]]])
    types = torch.tensor([[0, 1]])
    moved = boxes.clone()
    moved[0, 1] = torch.tensor([0.2, 0.8, 0.1, 0.1])
    a = _prompt_outputs(dec, boxes, types, feats, mf, 2, masked)
    b = _prompt_outputs(dec, moved, types, feats, mf, 2, masked)
    assert a["pred_masks"].shape == (1, 2, 2, *MASK_SIZE)
    assert not torch.allclose(a["query_embeds"][:, 1], b["query_embeds"][:, 1])
    keys = ("pred_logits", "pred_masks", "pred_objectness", "query_embeds")
    same = all(torch.allclose(a[k][:, 0], b[k][:, 0], atol=1e-5) for k in keys)
    assert same == masked


def test_gradients_reach_all_used_parameters():
    dec = make_decoder().train()
    feats, mf = make_inputs(2, 2)
    out = dec(feats, mf, 2, text_bank())
    loss = sum(
        sum(p[k].square().mean() for k in ("pred_logits", "pred_masks", "pred_objectness"))
        for p in iter_predictions(out)
    )
    loss.backward()
    for name, p in dec.named_parameters():
        if name.startswith(PROMPT_PARAMS):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradients_in_location_mode():
    dec = make_decoder().train()
    feats, mf = make_inputs(1, 1)
    content, pos = dec.encode_box_prompts(torch.rand(1, 3, 4), torch.tensor([[0, 1, 0]]))
    out = dec(feats, mf, 1, text_bank(), content, pos, identity_self_attn_mask(1, 3, HEADS))
    (out["pred_masks"].square().mean() + out["pred_logits"].square().mean()).backward()
    for name in PROMPT_PARAMS:
        assert all(p.grad is not None for p in getattr(dec, name).parameters()), name
    assert dec.query_feat.weight.grad is None and dec.query_embed.weight.grad is None


def test_build_from_config():
    from detectron2.config import get_cfg

    from omgseg.config import add_omgseg_config
    from omgseg.modeling.build import build_transformer_decoder

    cfg = get_cfg()
    add_omgseg_config(cfg)
    full = build_transformer_decoder(cfg, 256, 768)
    assert isinstance(full, OMGMaskDecoder)
    assert sum(p.numel() for p in full.parameters()) == 15_220_225
    del full

    cfg.MODEL.OMG.HIDDEN_DIM = HIDDEN
    cfg.MODEL.OMG.NUM_OBJECT_QUERIES = QUERIES
    cfg.MODEL.OMG.NHEADS = HEADS
    cfg.MODEL.OMG.DIM_FEEDFORWARD = 64
    cfg.MODEL.OMG.DEC_LAYERS = LAYERS
    cfg.MODEL.OMG.MASK_DIM = MASK_DIM
    dec = build_transformer_decoder(cfg, 24, TEXT_DIM).eval()
    assert dec.num_queries == QUERIES and dec.num_layers == LAYERS and dec.logit_scale == 100.0
    feats, mf = make_inputs(1, 1, in_channels=24)
    with torch.no_grad():
        out = dec(feats, mf, 1, text_bank(k=2))
    assert out["pred_logits"].shape == (1, QUERIES, 3)


def test_cross_attention_mask_is_applied():
    feats, mf = make_inputs(1, 2)
    with torch.no_grad():
        a = make_decoder(attn_mask_threshold=0.5)(
            feats, mf, 2, text_bank(), return_aux_outputs=True
        )
        b = make_decoder(attn_mask_threshold=0.0)(  # nothing blocked
            feats, mf, 2, text_bank(), return_aux_outputs=True
        )
    torch.testing.assert_close(a["aux_outputs"][0]["pred_masks"], b["aux_outputs"][0]["pred_masks"])
    assert not torch.allclose(a["pred_masks"], b["pred_masks"])


# ---------------------------------------------------------------------------------------------
# The inference path against the previous algorithm, kept here as the reference: a full
# prediction (full-resolution masks, mask pooling, classification) before every layer, its mask
# logits resized to the attended level, repeated per head and given to nn.MultiheadAttention.


def reference_forward(dec, feats, mf, t, text, query_content=None, query_pos=None, sa_mask=None):
    assert not dec.transformer_cross_attention_layers[0].normalize_before  # post-norm only
    b = mf.shape[0] // t
    src, pos, sizes = dec._memory(feats, b, t)
    mf = mf.reshape(b, t, *mf.shape[1:])
    if query_content is None:
        output = dec.query_feat.weight.unsqueeze(0).repeat(b, 1, 1)
        query_pos = dec.query_embed.weight.unsqueeze(0).repeat(b, 1, 1)
    else:
        output = query_content
    q = output.shape[1]

    def predict(x):
        normed = dec.decoder_norm(x)
        masks = torch.einsum("bqc,btchw->bqthw", dec.mask_embed(normed), mf)
        m = (masks > 0).float()
        pooled = torch.einsum("bqthw,btchw->bqc", m, mf) / (m.sum((2, 3, 4))[..., None] + 1e-8)
        cls = dec.cls_proj(dec.mask_pooling_proj(pooled) + normed)
        pred = {"pred_logits": dec.classify(cls, text), "pred_masks": masks,
                "pred_objectness": dec.iou_embed(normed)}
        return pred, normed

    def attn_mask(masks, size):
        r = F.interpolate(masks.flatten(1, 2), size=size, mode="bilinear", align_corners=False)
        blocked = r.sigmoid().reshape(b, q, -1) < dec.attn_mask_threshold
        blocked = blocked & ~blocked.all(-1, keepdim=True)
        heads = dec.num_heads
        return blocked.unsqueeze(1).expand(-1, heads, -1, -1).reshape(b * heads, q, -1)

    preds = []
    for i in range(dec.num_layers):
        pred, _ = predict(output)
        preds.append(pred)
        lvl = i % 3
        mask = attn_mask(pred["pred_masks"], sizes[lvl])
        ca = dec.transformer_cross_attention_layers[i]
        att = ca.attn(output + query_pos, src[lvl] + pos[lvl], src[lvl], attn_mask=mask)[0]
        output = ca.norm(output + att)
        sa = dec.transformer_self_attention_layers[i]
        att = sa.attn(output + query_pos, output + query_pos, output, attn_mask=sa_mask)[0]
        output = sa.norm(output + att)
        output = dec.transformer_ffn_layers[i](output)
    pred, normed = predict(output)
    return dict(pred, query_embeds=normed, aux_outputs=preds)


PRED_KEYS = ("pred_logits", "pred_masks", "pred_objectness")


def _assert_same_prediction(got, want):
    for k in PRED_KEYS:
        torch.testing.assert_close(got[k], want[k], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("b, t", [(1, 1), (2, 1), (1, 3)])
def test_inference_path_equals_previous_algorithm(b, t):
    dec = make_decoder()
    feats, mf = make_inputs(b, t, seed=5)
    text = text_bank()
    with torch.no_grad():
        ref = reference_forward(dec, feats, mf, t, text)
        out = dec(feats, mf, t, text)  # eval: no intermediate predictions
        with_aux = dec(feats, mf, t, text, return_aux_outputs=True)
    assert out["aux_outputs"] == []
    _assert_same_prediction(out, ref)
    torch.testing.assert_close(out["query_embeds"], ref["query_embeds"], atol=2e-5, rtol=1e-5)
    # The attention masks really differ between layers (the test is not vacuous).
    blocked = [float((p["pred_masks"] < 0).float().mean()) for p in ref["aux_outputs"]]
    assert 0.05 < min(blocked) and max(blocked) < 0.95
    assert len(with_aux["aux_outputs"]) == LAYERS
    for got, want in zip(with_aux["aux_outputs"], ref["aux_outputs"]):
        _assert_same_prediction(got, want)
    _assert_same_prediction(with_aux, out)


def test_training_outputs_equal_previous_algorithm_with_gradients():
    dec = make_decoder().train()
    feats, mf = make_inputs(2, 2, seed=6)
    out = dec(feats, mf, 2, text_bank())
    assert len(out["aux_outputs"]) == LAYERS  # deep supervision in training
    with torch.no_grad():
        ref = reference_forward(dec, feats, mf, 2, text_bank())
    for got, want in zip(iter_predictions(out), [ref] + ref["aux_outputs"]):
        _assert_same_prediction(got, want)


def test_prompt_path_equals_previous_algorithm():
    dec = make_decoder()
    feats, mf = make_inputs(1, 2, seed=7)
    content, pos = dec.encode_box_prompts(torch.rand(1, 3, 4), torch.tensor([[0, 1, 0]]))
    sa = identity_self_attn_mask(1, 3, HEADS)
    with torch.no_grad():
        ref = reference_forward(dec, feats, mf, 2, text_bank(), content, pos, sa)
        out = dec(feats, mf, 2, text_bank(), content, pos, sa)
    _assert_same_prediction(out, ref)


@pytest.mark.parametrize("bias", [True, False])
def test_multi_head_attention_matches_module_with_per_head_or_shared_mask(bias):
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(16, 4, bias=bias, batch_first=True).eval()
    q, k, v = torch.randn(2, 5, 16), torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    shared = torch.rand(2, 1, 5, 7) < 0.5
    shared[..., 0] = False  # no fully blocked row
    per_head = shared.expand(-1, 4, -1, -1).reshape(8, 5, 7)
    with torch.no_grad():
        want = attn(q, k, v, attn_mask=per_head, need_weights=False)[0]
        for mask in (shared, per_head, per_head.view(2, 4, 5, 7)):
            torch.testing.assert_close(multi_head_attention(attn, q, k, v, mask), want)
        unmasked = attn(q, k, v, need_weights=False)[0]
        torch.testing.assert_close(multi_head_attention(attn, q, k, v, None), unmasked)
    assert not torch.allclose(want, unmasked)


def test_math_attention_only_for_small_cuda_score_tensors():
    assert uses_math_attention("cuda", 1 * 8 * 1 * 13600)  # a re-prompt on ConvNeXt-L
    assert uses_math_attention("cuda", MATH_ATTENTION_MAX_SCORES)
    assert not uses_math_attention("cuda", MATH_ATTENTION_MAX_SCORES + 1)
    assert not uses_math_attention("cpu", 1)


@pytest.mark.parametrize("training", [False, True])
def test_math_attention_path_matches_the_default_kernel(monkeypatch, training):
    """The path CUDA takes for few queries gives the default kernel's values and gradients
    (checked on CPU, where both exist, by forcing the choice)."""
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(16, 4, batch_first=True)
    q, k, v = torch.randn(2, 3, 16), torch.randn(2, 40, 16), torch.randn(2, 40, 16)
    blocked = torch.rand(2, 1, 3, 40) < 0.5
    blocked[..., 0] = False

    def run(force_math):
        monkeypatch.setattr(layers_module, "uses_math_attention", lambda *a: force_math)
        attn.zero_grad()
        with torch.set_grad_enabled(training):
            out = multi_head_attention(attn, q, k, v, blocked)
        if not training:
            return out, None
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        return out.detach(), attn.in_proj_weight.grad.clone()

    default, default_grad = run(False)
    math_out, math_grad = run(True)
    torch.testing.assert_close(math_out, default)
    if training:
        torch.testing.assert_close(math_grad, default_grad)


def test_resize_then_dot_equals_dot_then_resize():
    """Bilinear resizing is linear: attention masks can be computed at the attended size."""
    g = torch.Generator().manual_seed(8)
    embed = torch.randn(2, 40, 32, generator=g)
    feats = torch.randn(2, 2, 32, 48, 72, generator=g)  # B, T, C, H, W
    full = tube_mask_logits(embed, feats)  # [B, Q, T, H, W]
    torch.testing.assert_close(full, torch.einsum("bqc,btchw->bqthw", embed, feats))
    total = flipped = 0
    for size in [(6, 9), (12, 18), (24, 36)]:
        low = tube_mask_logits(embed, resize_mask_features(feats, size))
        ref = F.interpolate(full.flatten(1, 2), size=size, mode="bilinear", align_corners=False)
        ref = ref.view_as(low)
        torch.testing.assert_close(low, ref, atol=1e-4, rtol=1e-5)
        # Measured: the blocked / open decisions differ only for logits within float error of
        # 0 (sigmoid 0.5); none at all here.
        diff = mask_logits_to_attn_mask(low) != mask_logits_to_attn_mask(ref)
        total += diff.numel()
        flipped += int(diff.sum())
        borderline = ref.flatten(2)[diff[:, 0]].abs()
        assert borderline.numel() == 0 or float(borderline.max()) < 1e-4
    assert flipped <= total * 1e-5


@pytest.mark.parametrize("pre_norm", [False, True])
def test_independent_queries_equal_identity_mask_values_and_gradients(pre_norm):
    """The kernel-free self-attention of location queries gives what the identity mask gives,
    forward and backward (training mode, with aux outputs)."""
    dec = make_decoder(pre_norm=pre_norm).train()
    feats, mf = make_inputs(2, 2, seed=5)
    content, pos = dec.encode_box_prompts(torch.rand(2, 3, 4), torch.tensor([[0, 1, 0], [1, 1, 0]]))
    results = []
    for independent in (False, True):
        dec.zero_grad()
        sa = None if independent else identity_self_attn_mask(2, 3, HEADS)
        out = dec(feats, mf, 2, text_bank(), content, pos, sa, independent_queries=independent)
        loss = out["pred_masks"].square().mean() + out["pred_logits"].mean()
        loss = loss + sum(a["pred_masks"].mean() for a in out["aux_outputs"])
        loss.backward(retain_graph=True)
        grads = {n: p.grad.clone() for n, p in dec.named_parameters() if p.grad is not None}
        results.append((out, grads))
    (a, ga), (b, gb) = results
    _assert_same_prediction(b, a)
    assert ga.keys() == gb.keys()
    # the query / key projections of self-attention get no gradient from an identity mask
    for name in ga:
        torch.testing.assert_close(gb[name], ga[name], atol=1e-5, rtol=1e-4, msg=name)


def test_independent_queries_refuse_a_mask():
    dec = make_decoder()
    feats, mf = make_inputs(1, 1)
    content, pos = dec.encode_box_prompts(torch.rand(1, 2, 4), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="independent_queries"):
        dec(feats, mf, 1, text_bank(), content, pos, identity_self_attn_mask(1, 2, HEADS),
            independent_queries=True)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 1.0])
def test_attention_mask_of_a_layer_equals_the_tube_rule(threshold):
    """The decoder's layer masks (at the attended level's size, against the logit of the
    threshold) equal ``mask_logits_to_attn_mask(tube_mask_logits(...))``, detached."""
    dec = make_decoder(attn_mask_threshold=threshold)
    g = torch.Generator().manual_seed(5)
    embed = torch.randn(2, QUERIES, MASK_DIM, generator=g, requires_grad=True)
    for t in (1, 3):
        level = torch.randn(2, t, MASK_DIM, 4, 5, generator=g)
        level[:, :, :, 0] = 0.0  # logits exactly 0 on a row: sigmoid 0.5, the boundary
        tokens = level.transpose(1, 2).flatten(2)  # DecoderMemory's layout [B, C, T*h*w]
        got = dec._attn_mask(embed, tokens)
        want = mask_logits_to_attn_mask(tube_mask_logits(embed, level), threshold)
        assert got.shape == (2, 1, QUERIES, t * 20) and not got.requires_grad
        assert torch.equal(got, want)
