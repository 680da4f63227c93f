"""Text embeddings: templates, synonym splitting, prompt ensembling, padding, the one cache, and
the text tower run on the trimmed context."""
import os
import zlib

import pytest
import torch
from torch.nn import functional as F

from omgseg.modeling.clip.text_embeddings import (
    VILD_TEMPLATES,
    TextEmbeddingCache,
    compute_text_embeddings,
    split_synonyms,
    text_cache_path,
)

D = 8


class FakeCLIP:
    """tokenizer + encode_text with a known, prompt-dependent vector per prompt; counts calls."""

    def __init__(self):
        self.prompts = []
        self.calls = 0
        self.encoded = 0

    @staticmethod
    def vector(prompt):
        g = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
        return torch.randn(D, generator=g) * 3.0  # deliberately not unit norm

    def tokenizer(self, texts):
        ids = []
        for t in texts:
            self.prompts.append(t)
            ids.append(len(self.prompts) - 1)
        return torch.tensor(ids)[:, None]

    def encode_text(self, tokens):
        self.calls += 1
        self.encoded += tokens.shape[0]
        return torch.stack([self.vector(self.prompts[i]) for i in tokens[:, 0].tolist()])


def _expected(synonym):
    vecs = torch.stack(
        [F.normalize(FakeCLIP.vector(t.format(synonym)), dim=0) for t in VILD_TEMPLATES]
    )
    return F.normalize(vecs.mean(0), dim=0)


def test_templates():
    assert len(VILD_TEMPLATES) == 14 and len(set(VILD_TEMPLATES)) == 14
    assert all(t.count("{}") == 1 for t in VILD_TEMPLATES)
    assert VILD_TEMPLATES[0] == "a photo of a {}."


@pytest.mark.parametrize(
    "name,expected",
    [
        ("person", ["person"]),
        ("person, people", ["person", "people"]),
        ("traffic_light", ["traffic light"]),
        ("table/desk", ["table", "desk"]),
        ("wall_or_fence", ["wall", "fence"]),
        ("  Person ,person,  PEOPLE  ", ["person", "people"]),
        ("a,,b", ["a", "b"]),
        ("dining  table", ["dining table"]),
    ],
)
def test_split_synonyms(name, expected):
    assert split_synonyms(name) == expected


def test_split_synonyms_rejects_empty():
    with pytest.raises(ValueError):
        split_synonyms(" , ")


def _get(cache, fake, names, model_key="fake", **kw):
    return cache.get(names, model_key=model_key, encode_text=fake.encode_text,
                     tokenizer=fake.tokenizer, **kw)


def test_hand_computed_mean_then_normalise():
    fake = FakeCLIP()
    emb = compute_text_embeddings(fake.encode_text, fake.tokenizer, ["cat, kitty", "dog"],
                                  batch_size=5)
    assert emb.shape == (2, 2, D) and emb.dtype == torch.float32
    torch.testing.assert_close(emb[0, 0], _expected("cat"))
    torch.testing.assert_close(emb[0, 1], _expected("kitty"))
    torch.testing.assert_close(emb[1, 0], _expected("dog"))
    # padding repeats the first synonym
    assert torch.equal(emb[1, 1], emb[1, 0])
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2, 2))
    # 3 synonyms x 14 templates in chunks of 5 prompts
    assert fake.encoded == 3 * 14 and fake.calls == -(-42 // 5)


def test_batch_size_does_not_change_result():
    fake = FakeCLIP()
    names = ["cat", "dog, puppy, hound", "car"]
    a = compute_text_embeddings(fake.encode_text, fake.tokenizer, names, batch_size=3)
    b = compute_text_embeddings(fake.encode_text, fake.tokenizer, names, batch_size=128)
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 3, D)


def test_cache_memory_then_disk(tmp_path):
    fake = FakeCLIP()
    names = ["cat, kitty", "dog"]
    cache = TextEmbeddingCache(str(tmp_path))
    first = _get(cache, fake, names)
    calls = fake.calls
    assert calls > 0
    path = cache.path("fake", names)
    assert path == text_cache_path(str(tmp_path), "fake", names)
    assert os.path.isfile(path) and os.path.dirname(path) == str(tmp_path / "fake")
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".tmp")]

    # memory: the very same tensor, no encoding and no file read (the file is gone)
    os.rename(path, path + ".bak")
    assert _get(cache, fake, names) is first and fake.calls == calls
    os.rename(path + ".bak", path)

    # disk: a fresh cache (another process) reads the file
    again = _get(TextEmbeddingCache(str(tmp_path)), fake, names)
    assert fake.calls == calls and torch.equal(again, first)

    # another vocabulary or another model: other entries, other files
    _get(cache, fake, names + ["car"])
    assert fake.calls > calls
    _get(cache, fake, names, model_key="other")
    assert len([f for f in os.listdir(tmp_path / "fake") if f.endswith(".pt")]) == 2
    assert os.path.isfile(cache.path("other", names))


def test_cache_without_dir_and_lru_bound():
    fake = FakeCLIP()
    cache = TextEmbeddingCache(None, max_in_memory=2)
    assert cache.path("fake", ["cat"]) == ""
    a = _get(cache, fake, ["cat"])
    _get(cache, fake, ["dog"])
    assert _get(cache, fake, ["cat"]) is a  # still in memory
    _get(cache, fake, ["car"])  # evicts "dog", the least recently used
    calls = fake.calls
    _get(cache, fake, ["cat"])
    assert fake.calls == calls
    _get(cache, fake, ["dog"])
    assert fake.calls > calls


def test_repeated_call_short_cut_keys_on_every_argument(monkeypatch):
    """The same (immutable) names again return the last tensor without re-keying them; any other
    argument, a list, or a cleared cache goes through the full lookup."""
    import omgseg.modeling.clip.text_embeddings as te

    fake = FakeCLIP()
    cache = TextEmbeddingCache(None)
    names = ("cat, kitty", "dog")
    first = _get(cache, fake, names)
    keyed = []
    real_split = te.split_synonyms
    monkeypatch.setattr(te, "split_synonyms", lambda n: keyed.append(n) or real_split(n))
    assert _get(cache, fake, names) is first and keyed == []  # the short cut
    assert _get(cache, fake, names, model_key="other") is not first and keyed  # another entry
    assert _get(cache, fake, names) is first
    assert _get(cache, fake, list(names)) is first  # a list: the full lookup, same entry
    calls = fake.calls
    cache.clear_memory()
    assert torch.equal(_get(cache, fake, names), first) and fake.calls > calls


def test_corrupt_or_mismatched_cache_is_recomputed(tmp_path, caplog):
    fake = FakeCLIP()
    names = ["cat, kitty", "dog"]
    first = _get(TextEmbeddingCache(str(tmp_path)), fake, names)
    path = text_cache_path(str(tmp_path), "fake", names)

    with open(path, "wb") as f:
        f.write(b"garbage")
    calls = fake.calls
    with caplog.at_level("WARNING"):
        again = _get(TextEmbeddingCache(str(tmp_path)), fake, names)
    assert fake.calls > calls and torch.equal(again, first)
    assert any("recomputing" in r.getMessage() for r in caplog.records)
    torch.load(path, weights_only=True)  # rewritten, readable again

    # a readable file whose content belongs to another vocabulary
    data = torch.load(path, weights_only=True)
    data["synonyms"] = [["bird"], ["fish"]]
    torch.save(data, path)
    calls = fake.calls
    again = _get(TextEmbeddingCache(str(tmp_path)), fake, names)
    assert fake.calls > calls and torch.equal(again, first)


def test_expands_user_in_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    fake = FakeCLIP()
    _get(TextEmbeddingCache("~/cache"), fake, ["cat"], model_key="k")
    assert os.path.isfile(text_cache_path(str(tmp_path / "cache"), "k", ["cat"]))


def test_with_tiny_clip_text_tower(tmp_path):
    from omgseg.modeling.backbone.openclip_backbone import OpenCLIPBackbone

    torch.manual_seed(0)
    bb = OpenCLIPBackbone(model_name="omg_tiny_rn", pretrained="")
    emb = TextEmbeddingCache(str(tmp_path)).get(
        ["person, people", "traffic_light"], model_key=bb.model_key, encode_text=bb.encode_text,
        tokenizer=bb.tokenizer, device="cpu")
    assert emb.shape == (2, 2, bb.text_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2, 2))
    assert os.path.isdir(tmp_path / bb.model_key)


# ---- the text tower on the trimmed context --------------------------------------------------
def _clip_with_text(**text_cfg):
    """A CLIP with a small ModifiedResNet and the given text tower settings (random init)."""
    from open_clip import CLIP

    torch.manual_seed(0)
    vision = {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 64}
    text = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 3}
    text.update(text_cfg)
    return CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text).eval()


PROMPTS = ["a photo of a cat.", "There is a large traffic light in the scene.", "x",
           "This is a photo of a medium television receiver, television set, tv, tv set."]


@pytest.mark.parametrize("text_cfg", [{}, {"pool_type": "eos", "eos_id": 49407}])
def test_trimmed_context_gives_the_same_features(text_cfg):
    import open_clip

    from omgseg.modeling.clip.text_encoder import can_trim_context, encode_text

    model = _clip_with_text(**text_cfg)
    tokens = open_clip.get_tokenizer("RN50")(PROMPTS)
    seen = []
    hook = model.transformer.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    try:
        assert can_trim_context(model)
        got = encode_text(model, tokens)
    finally:
        hook.remove()
    longest = int(tokens.argmax(-1).max()) + 1
    assert seen[-1][1] == longest < 77  # the tower ran on the trimmed context
    with torch.no_grad():
        ref = model.encode_text(tokens)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("text_cfg", [{"no_causal_mask": True}, {"pool_type": "last"}])
def test_untrimmable_towers_fall_back_to_encode_text(text_cfg):
    import open_clip

    from omgseg.modeling.clip.text_encoder import can_trim_context, encode_text

    model = _clip_with_text(**text_cfg)
    tokens = open_clip.get_tokenizer("RN50")(PROMPTS)
    seen = []
    hook = model.transformer.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    try:
        assert not can_trim_context(model)
        got = encode_text(model, tokens)
    finally:
        hook.remove()
    assert seen[-1][1] == 77
    with torch.no_grad():
        torch.testing.assert_close(got, model.encode_text(tokens))
