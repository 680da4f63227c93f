"""Prompt encoding into location queries (omgseg/modeling/prompts/encoder.py, decode.py)."""
import pytest
import torch

from conftest import make_tiny_cfg
from detectron2.modeling import build_model

from omgseg.data.prompts import Prompts
from omgseg.modeling.prompts import (
    PromptSettings,
    decode_prompts,
    encode_prompts,
    jitter_boxes,
    normalized_cxcywh,
    pool_box_features,
    pool_region_features,
)
from omgseg.modeling.transformer_decoder.omg_decoder import identity_self_attn_mask

NAMES = ["cat", "dog"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = make_tiny_cfg(str(tmp_path_factory.mktemp("enc")),
                        **{"DATASETS.TEST": "()", "DATASETS.TRAIN": "()"})
    torch.manual_seed(0)
    return build_model(cfg).eval()


def test_normalized_cxcywh_by_hand():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [-5.0, 0.0, 5.0, 6.0]])
    out = normalized_cxcywh(boxes, (100, 200))  # H 100, W 200
    torch.testing.assert_close(out[0], torch.tensor([0.1, 0.4, 0.1, 0.4]))
    # a point pseudo box at the image corner: clamped like the official inverse_sigmoid
    torch.testing.assert_close(out[1], torch.tensor([0.0, 0.03, 0.05, 0.06]))


def test_jitter_is_the_official_uniform_noise():
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4]]).repeat(1000, 1)
    out = jitter_boxes(boxes, 0.4, 0.01, torch.Generator().manual_seed(0))
    limit = 0.4 * 0.01 * torch.tensor([0.1, 0.2, 0.2, 0.4])  # (w/2, h/2, w, h)
    delta = (out - boxes).abs()
    assert (delta <= limit + 1e-7).all() and (delta.amax(0) > 0.9 * limit).all()
    assert torch.equal(jitter_boxes(boxes, 0.0, 0.01), boxes)


def test_pool_region_features_by_hand():
    feats = torch.arange(8.0).view(2, 2, 2)  # C=2, h=w=2 at stride 2 of a 4 x 4 input
    one_cell = torch.zeros(1, 4, 4, dtype=torch.bool)
    one_cell[0, 0:2, 2:4] = True  # exactly cell (0, 1)
    torch.testing.assert_close(pool_region_features(feats, one_cell), feats[:, 0, 1][None])
    # one pixel in cell (0, 0) and a full cell (1, 1): weights 1/4 and 1
    mixed = torch.zeros(1, 3, 3, dtype=torch.bool)  # smaller than the padded input
    mixed[0, 0, 0] = True
    mixed[0, 2, 2] = True  # -> cell (1, 1), a quarter of it
    want = (feats[:, 0, 0] * 0.25 + feats[:, 1, 1] * 0.25) / 0.5
    torch.testing.assert_close(pool_region_features(feats, mixed), want[None])


def test_pool_box_features_by_hand_equals_raster_pooling():
    feats = torch.arange(32.0).view(2, 4, 4)  # C=2, 4 x 4 cells at stride 4 of a 16 x 16 input
    # exactly cell (1, 2)
    torch.testing.assert_close(pool_box_features(feats, torch.tensor([[8.0, 4, 12, 8]]), 4),
                               feats[:, 1, 2][None])
    # a point's +-3 px box around (6, 6): pixels 3..9 -> cells 0..2 with weights 1/4, 1, 1/4
    w = torch.tensor([0.25, 1.0, 0.25])
    weights = (w[:, None] * w[None, :])
    want = (feats[:, :3, :3] * weights).sum((1, 2)) / weights.sum()
    got = pool_box_features(feats, torch.tensor([[3.0, 3, 9, 9]]), 4)
    torch.testing.assert_close(got, want[None])
    raster = torch.zeros(1, 16, 16, dtype=torch.bool)
    raster[0, 3:9, 3:9] = True  # the same box as a raster: area pooling gives the same numbers
    torch.testing.assert_close(got, pool_region_features(feats, raster))
    assert pool_box_features(feats, torch.zeros(0, 4), 4).shape == (0, 2)


def test_pool_boxes_adds_features_to_points_and_boxes_only_when_asked(model):
    dec = model.mask_decoder
    c = dec.hidden_dim
    mf = torch.randn(1, 1, c, 16, 16)
    prompts = _prompts(["point", "box"], [[1, 1, 7, 7], [0, 0, 32, 32]])
    plain = encode_prompts(dec, [prompts], mf, point_type=1)
    pooled = encode_prompts(dec, [prompts], mf, point_type=1, pool_boxes=True, mask_stride=4)
    feats = pool_box_features(mf[0, 0], prompts.boxes, 4)
    torch.testing.assert_close(pooled.content[0], plain.content[0] + dec.mask_pooling_proj(feats))
    torch.testing.assert_close(pooled.pos, plain.pos)


def _prompts(kinds, boxes, size=(64, 64), regions=None):
    return Prompts(kinds, torch.tensor(boxes, dtype=torch.float32), size, regions)


def test_encode_prompts_types_content_and_padding(model):
    dec = model.mask_decoder
    c = dec.hidden_dim
    mf = torch.randn(2, 1, c, 16, 16)
    region = torch.zeros(1, 64, 64, dtype=torch.bool)
    region[0, 8:24, 8:24] = True
    a = _prompts(["point", "box", "scribble"], [[1, 1, 7, 7], [0, 0, 32, 32], [8, 8, 24, 24]],
                 regions=region)
    b = _prompts(["point"], [[10, 10, 16, 16]])
    q = encode_prompts(dec, [a, b], mf, point_type=1)
    assert q.content.shape == (2, 3, c) and q.valid.tolist() == [[True] * 3, [True, False, False]]
    base = dec.mask_tokens.weight[0]
    pb = dec.pb_embedding.weight
    torch.testing.assert_close(q.content[0, 0], pb[1] + base)  # point: row 1
    torch.testing.assert_close(q.content[0, 1], pb[0] + base)  # box: row 0
    pooled = pool_region_features(mf[0, 0], region)
    torch.testing.assert_close(q.content[0, 2], pb[0] + base + dec.mask_pooling_proj(pooled)[0])
    q0 = encode_prompts(dec, [a, b], mf, point_type=0)  # the official release's row
    torch.testing.assert_close(q0.content[0, 0], pb[0] + base)
    _, pos = dec.encode_box_prompts(torch.tensor([[[4 / 64, 4 / 64, 6 / 64, 6 / 64]]]),
                                    torch.zeros(1, 1, dtype=torch.long))
    torch.testing.assert_close(q.pos[0, 0], pos[0, 0])
    assert torch.equal(q.self_attn_mask, identity_self_attn_mask(2, 3, dec.num_heads))
    with pytest.raises(ValueError, match="mask_features must be"):
        encode_prompts(dec, [a], mf)


def test_each_prompt_is_answered_independently_in_one_forward(model):
    images = [{"image": torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8)}]
    text = model.text_embeddings(NAMES)
    with torch.no_grad():
        _, memory = model.prompt_memory(images)
        one = _prompts(["box"], [[4, 4, 40, 30]], (64, 96))
        many = _prompts(["point", "box", "box"], [[50, 20, 56, 26], [4, 4, 40, 30],
                                                  [0, 0, 96, 64]], (64, 96))
        s = PromptSettings()
        out1, _ = decode_prompts(model.mask_decoder, memory, [one], text, s)
        out3, _ = decode_prompts(model.mask_decoder, memory, [many], text, s)
    torch.testing.assert_close(out1["pred_masks"][0, 0], out3["pred_masks"][0, 1])
    torch.testing.assert_close(out1["pred_logits"][0, 0], out3["pred_logits"][0, 1])
    assert not torch.allclose(out3["pred_masks"][0, 0], out3["pred_masks"][0, 1])


def test_cached_memory_gives_the_same_decoder_output(model):
    """The decoder on a prepared memory equals the one-call forward (the re-prompt path)."""
    images = [{"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)}]
    text = model.text_embeddings(NAMES)
    with torch.no_grad():
        imgs, _ = model._frames(images)
        _, mf, ms = model.encode(imgs)
        memory = model.mask_decoder.prepare_memory(ms, mf, 1)
        a = model.mask_decoder(ms, mf, 1, text)
        b = model.mask_decoder(None, None, 1, text, memory=memory)
    torch.testing.assert_close(a["pred_masks"], b["pred_masks"])
    torch.testing.assert_close(a["pred_logits"], b["pred_logits"])


def test_jitter_moves_positions_in_training_only(model):
    dec = model.mask_decoder
    mf = torch.zeros(1, 1, dec.mask_dim, 8, 8)
    p = _prompts(["box"], [[4, 4, 20, 20]], (32, 32))
    q1 = encode_prompts(dec, [p], mf, noise_scale=0.0)
    q2 = encode_prompts(dec, [p], mf, noise_scale=0.4, noise_factor=0.5,
                        generator=torch.Generator().manual_seed(1))
    assert torch.equal(q1.content, q2.content) and not torch.allclose(q1.pos, q2.pos)
    images = [{"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)}]
    p = _prompts(["box"], [[4, 4, 40, 40]], (64, 64))
    text = model.text_embeddings(NAMES)
    noisy = PromptSettings(noise_scale=0.4, noise_factor=0.5)
    with torch.no_grad():
        _, memory = model.prompt_memory(images)
        outs = [decode_prompts(dec, memory, [p], text, noisy, training=False)[0]["pred_masks"]
                for _ in range(2)]
        trained = decode_prompts(dec, memory, [p], text, noisy, training=True)[0]["pred_masks"]
    assert torch.equal(outs[0], outs[1]) and not torch.allclose(outs[0], trained)
