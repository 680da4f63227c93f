"""OpenCLIPBackbone and the CLIP factory on the two tiny OpenCLIP configs (CPU, no download)."""
import os
import re

import pytest
import torch

from omgseg.modeling.backbone.openclip_backbone import OpenCLIPBackbone
from omgseg.modeling.clip.factory import MODEL_CONFIG_DIR, TINY_CLIP_CONFIGS, build_clip_model

CHANNELS = {
    "omg_tiny_convnext": (40, 80, 160, 320),
    "omg_tiny_rn": (64, 128, 256, 512),
}
NAMES = sorted(CHANNELS)


def _tiny_clip(name, seed=0):
    torch.manual_seed(seed)
    return build_clip_model(name, "")


@pytest.fixture(scope="module")
def frozen():
    """One frozen backbone per tiny config, built once for the module."""
    out = {}
    for name in NAMES:
        torch.manual_seed(0)
        out[name] = OpenCLIPBackbone(model_name=name, pretrained="", freeze=True)
    return out


def _image(n=3, h=64, w=96, seed=1):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_tiny_configs_are_package_json_files_registered_with_open_clip():
    import json

    import open_clip

    assert sorted(TINY_CLIP_CONFIGS) == NAMES
    for name in NAMES:
        with open(os.path.join(MODEL_CONFIG_DIR, name + ".json")) as f:
            shipped = json.load(f)
        assert name in open_clip.list_models()
        assert open_clip.get_model_config(name) == shipped == TINY_CLIP_CONFIGS[name]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_channels_strides(frozen, name):
    bb = frozen[name]
    out = bb(_image())
    shapes = bb.output_shape()
    assert list(out) == ["res2", "res3", "res4", "res5"] == list(shapes)
    for (key, feat), c, s in zip(out.items(), CHANNELS[name], (4, 8, 16, 32)):
        assert tuple(feat.shape) == (3, c, 64 // s, 96 // s), key
        assert shapes[key].channels == c and shapes[key].stride == s
    assert bb.size_divisibility == 32
    assert bb.text_dim == TINY_CLIP_CONFIGS[name]["embed_dim"] == 64


@pytest.mark.parametrize("name", NAMES)
def test_frozen_backbone(frozen, name):
    bb = frozen[name]
    assert not any(p.requires_grad for p in bb.parameters())
    bb.train()
    try:
        assert bb.training
        assert not any(m.training for m in bb.visual.modules())
        x = _image(n=1).requires_grad_(True)
        out = bb(x)
        assert all(v.grad_fn is None and not v.requires_grad for v in out.values())
    finally:
        bb.eval()


@pytest.mark.parametrize("name", NAMES)
def test_trainable_backbone_gets_gradients(name):
    torch.manual_seed(0)
    bb = OpenCLIPBackbone(model_name=name, pretrained="", freeze=False)
    bb.train()
    assert all(p.requires_grad for p in bb.parameters())
    assert bb.visual.training
    out = bb(_image(n=2))
    sum(v.float().pow(2).mean() for v in out.values()).backward()
    stem = next(bb.visual.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    # The text tower stays frozen in any case.
    text = [p for n, p in bb.clip_model.named_parameters() if not n.startswith("visual.")]
    assert not any(p.requires_grad for p in text)


@pytest.mark.parametrize("name", NAMES)
def test_text_tower_is_not_registered(frozen, name):
    bb = frozen[name]
    keys = list(bb.state_dict())
    assert keys and all(k.startswith("visual.") for k in keys)
    own = {id(p) for p in bb.parameters()}
    text = [p for n, p in bb.clip_model.named_parameters() if not n.startswith("visual.")]
    assert text and not any(id(p) in own for p in text)
    visual = sum(p.numel() for p in bb.clip_model.visual.parameters())
    assert sum(p.numel() for p in bb.parameters()) == visual
    tokens = bb.tokenizer(["a photo of a cat.", "a dog"])
    feats = bb.encode_text(tokens)
    assert feats.shape == (2, bb.text_dim) and feats.grad_fn is None


def test_build_from_cfg():
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    from omgseg import add_omgseg_config

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.MODEL.OMG.CLIP.MODEL_NAME = "omg_tiny_rn"
    cfg.MODEL.OMG.CLIP.PRETRAINED = ""
    bb = build_backbone(cfg)
    assert isinstance(bb, OpenCLIPBackbone) and bb.freeze
    assert bb.output_shape()["res5"].channels == 512


@pytest.mark.parametrize("name", NAMES)
def test_clip_head(frozen, name):
    bb = frozen[name]
    c5 = CHANNELS[name][-1]
    pooled = torch.randn(2, 5, c5)
    assert bb.clip_head(pooled).shape == (2, 5, bb.text_dim)
    x = _image(n=2)
    res5 = bb(x)["res5"]
    dense = bb.clip_dense_features(res5)
    assert dense.shape == res5.shape
    if name == "omg_tiny_convnext":
        # Global average pooling + clip_head reproduces CLIP's own image embedding.
        with torch.no_grad():
            ref = bb.clip_model.encode_image(x)
            got = bb.clip_head(dense.mean(dim=(2, 3)))
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_model_key_is_safe_and_tracks_weights(frozen):
    key = frozen["omg_tiny_rn"].model_key
    assert re.fullmatch(r"[A-Za-z0-9._-]+", key) and key.startswith("omg_tiny_rn__random__")
    # random init is seeded inside the factory: the global seed does not change the weights
    clip_a, tok = _tiny_clip("omg_tiny_rn", seed=0)
    clip_b, _ = _tiny_clip("omg_tiny_rn", seed=1)
    for (na, a), b in zip(clip_a.state_dict().items(), clip_b.state_dict().values()):
        assert torch.equal(a, b), na
    same = OpenCLIPBackbone(model_name="omg_tiny_rn", clip_model=clip_a, tokenizer=tok)
    assert same.model_key == key
    # other text weights -> another cache key
    with torch.no_grad():
        clip_b.token_embedding.weight.add_(1.0)
    other = OpenCLIPBackbone(model_name="omg_tiny_rn", clip_model=clip_b, tokenizer=tok)
    assert other.model_key != key


# ---- weights from local files ------------------------------------------------------------------
def _save(state_dict, path):
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    else:
        torch.save(state_dict, str(path))


@pytest.mark.parametrize(
    "name,filename,wrap",
    [
        ("omg_tiny_convnext", "clip.pth", None),
        ("omg_tiny_rn", "clip.safetensors", None),
        ("omg_tiny_rn", "clip.bin", "state_dict"),
        ("omg_tiny_rn", "clip.pt", "module."),
    ],
)
def test_local_file_weights(tmp_path, name, filename, wrap):
    ref_clip, tok = _tiny_clip(name, seed=3)
    sd = ref_clip.state_dict()
    if wrap == "state_dict":  # a training checkpoint of a DDP-wrapped model
        sd = {wrap: {"module." + k: v for k, v in sd.items()}, "epoch": 3}
    elif wrap == "module.":
        sd = {"module." + k: v for k, v in sd.items()}
    path = tmp_path / filename
    _save(sd, path)

    torch.manual_seed(99)  # a different random init underneath
    loaded, _ = build_clip_model(name, str(path))
    ref_sd, new_sd = ref_clip.state_dict(), loaded.state_dict()
    assert ref_sd.keys() == new_sd.keys()
    assert all(torch.equal(ref_sd[k], new_sd[k]) for k in ref_sd)

    ref_bb = OpenCLIPBackbone(model_name=name, pretrained="", clip_model=ref_clip, tokenizer=tok)
    file_bb = OpenCLIPBackbone(model_name=name, pretrained=str(path))
    x = _image(n=1)
    for k, v in ref_bb(x).items():
        assert torch.equal(v, file_bb(x)[k]), k
    assert os.path.basename(filename) in file_bb.model_key


def test_corrupt_or_missing_file(tmp_path):
    clip, _ = _tiny_clip("omg_tiny_rn")
    good = tmp_path / "good.pth"
    torch.save(clip.state_dict(), str(good))
    data = good.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match=re.escape(str(bad))):
        build_clip_model("omg_tiny_rn", str(bad))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(RuntimeError, match=re.escape(str(junk))):
        build_clip_model("omg_tiny_rn", str(junk))
    missing = tmp_path / "nope" / "clip.pth"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        build_clip_model("omg_tiny_rn", str(missing))


def test_mismatched_keys_are_listed(tmp_path):
    clip, _ = _tiny_clip("omg_tiny_rn")
    sd = dict(clip.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    del sd["visual.conv1.weight"]
    path = tmp_path / "odd.pth"
    torch.save(sd, str(path))
    with pytest.raises(RuntimeError) as err:
        build_clip_model("omg_tiny_rn", str(path))
    msg = str(err.value)
    assert "visual.conv1.weight" in msg and "extra.weight" in msg and str(path) in msg


def test_pretrained_tag_offline(monkeypatch):
    import open_clip.factory

    calls = []

    def fake_download(cfg, *args, **kwargs):
        calls.append(cfg)
        raise OSError("no network in tests")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", fake_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # A known tag: open_clip tries to download it (mocked here) and fails.
    with pytest.raises(RuntimeError) as err:
        build_clip_model("RN50", "openai")
    msg = str(err.value)
    assert calls and "RN50" in msg and "openai" in msg and "MODEL.OMG.CLIP.PRETRAINED" in msg
    # An unknown tag is refused before any download.
    calls.clear()
    with pytest.raises(RuntimeError) as err:
        build_clip_model("omg_tiny_convnext", "no_such_tag")
    msg = str(err.value)
    assert not calls and "no_such_tag" in msg and "omg_tiny_convnext" in msg
    assert "MODEL.OMG.CLIP.PRETRAINED" in msg


def test_unknown_model_name():
    with pytest.raises(KeyError, match="no_such_clip"):
        build_clip_model("no_such_clip", "")


@pytest.mark.parametrize(
    "name,channels,dim,visual_params",
    [
        ("convnext_large_d_320", (192, 384, 768, 1536), 768, 199_770_816),
        ("convnext_xxlarge", (384, 768, 1536, 3072), 1024, 846_543_744),
        ("RN50", (256, 512, 1024, 2048), 1024, 38_316_896),
    ],
)
def test_real_configs_on_meta_device(name, channels, dim, visual_params):
    """The paper's backbones, built shape-only (no memory, no weights): channels, strides, D,
    size."""
    import open_clip
    from open_clip.factory import get_model_config
    from open_clip.model import CLIP

    with torch.device("meta"):
        clip = CLIP(**get_model_config(name))
    bb = OpenCLIPBackbone(model_name=name, clip_model=clip, tokenizer=open_clip.get_tokenizer(name))
    assert sum(p.numel() for p in bb.parameters()) == visual_params
    assert bb.text_dim == dim
    out = bb(torch.empty(1, 3, 64, 96, device="meta"))
    for (key, feat), c, s in zip(out.items(), channels, (4, 8, 16, 32)):
        assert tuple(feat.shape) == (1, c, 64 // s, 96 // s), key
        assert bb.output_shape()[key].channels == c
    assert bb.clip_head(torch.empty(3, channels[-1], device="meta")).shape == (3, dim)


def test_text_tower_follows_token_device_without_moving_visual():
    torch.manual_seed(0)
    bb = OpenCLIPBackbone(model_name="omg_tiny_rn", pretrained="")
    bb._move_text_tower(torch.device("meta"))  # stands in for a GPU: only the text tower moves
    assert all(p.device.type == "cpu" for p in bb.parameters())
    assert bb.clip_model.visual is bb.visual
    text = [p for n, p in bb.clip_model.named_parameters() if not n.startswith("visual.")]
    assert all(p.is_meta for p in text)
    assert bb(_image(n=1))["res5"].device.type == "cpu"
