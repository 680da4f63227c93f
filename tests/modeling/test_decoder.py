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
    unblock_fully_masked_rows,
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


def make_inputs(b: int, t: int, in_channels: int = HIDDEN, seed: int = 1, same_frames: bool = False):
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
        out = dec(feats, mf, t, text_bank(k))
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
        out = dec(feats, mf, 2, text_bank())
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
    assert len(captured) == LAYERS + 1
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
        out = dec(feats, mf, 2, text_bank())
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
    # B=1, Q=2, T=2, 4x4 logits; query 0 is positive on the left half of frame 1 only,
    # query 1 is negative everywhere (fully blocked -> unblocked).
    logits = torch.full((1, 2, 2, 4, 4), -10.0, requires_grad=True)
    with torch.no_grad():
        logits[0, 0, 1, :, :2] = 10.0
    m = mask_logits_to_attn_mask(logits, (2, 2), num_heads=3, threshold=0.5)
    assert m.shape == (3, 2, 2 * 2 * 2) and m.dtype == torch.bool and not m.requires_grad
    q0 = torch.tensor([True] * 4 + [False, True, False, True])  # (t, y, x) order
    for h in range(3):
        assert torch.equal(m[h, 0], q0)
        assert not m[h, 1].any()


def test_mask_pool():
    feats = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(1, 2, 3, 2, 2)  # B T C H W
    logits = -torch.ones(1, 2, 2, 2, 2)
    logits[0, 0, 0, 0, 0] = 1.0
    logits[0, 0, 1, 1, 1] = 1.0
    pooled = mask_pool(feats, logits)
    expected0 = (feats[0, 0, :, 0, 0] + feats[0, 1, :, 1, 1]) / 2
    torch.testing.assert_close(pooled[0, 0], expected0)
    assert torch.equal(pooled[0, 1], torch.zeros(3))  # empty mask


def test_identity_self_attn_mask():
    m = identity_self_attn_mask(2, 3, 4, torch.device("cpu"))
    assert m.shape == (8, 3, 3) and m.dtype == torch.bool
    assert torch.equal(m[5], ~torch.eye(3, dtype=torch.bool))


def _prompt_outputs(dec, boxes, types, feats, mf, t, masked):
    content, pos = dec.encode_box_prompts(boxes, types)
    assert content.shape == pos.shape == (*boxes.shape[:2], HIDDEN)
    sa = identity_self_attn_mask(boxes.shape[0], boxes.shape[1], HEADS, boxes.device) if masked else None
    with torch.no_grad():
        return dec(feats, mf, t, text_bank(), query_content=content, query_pos=pos, self_attn_mask=sa)


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
        p["pred_logits"].square().mean() + p["pred_masks"].square().mean() + p["pred_objectness"].square().mean()
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
        a = make_decoder(attn_mask_threshold=0.5)(feats, mf, 2, text_bank())
        b = make_decoder(attn_mask_threshold=0.0)(feats, mf, 2, text_bank())  # nothing blocked
    torch.testing.assert_close(a["aux_outputs"][0]["pred_masks"], b["aux_outputs"][0]["pred_masks"])
    assert not torch.allclose(a["pred_masks"], b["pred_masks"])
