"""Text-embedding bank: templates, synonym splitting, prompt ensembling, padding, disk cache."""
import os
import zlib

import pytest
import torch
from torch.nn import functional as F

from omgseg.modeling.clip.text_embeddings import (
    VILD_TEMPLATES,
    class_names_from_metadata,
    clear_text_embedding_memo,
    get_text_embeddings,
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


@pytest.fixture(autouse=True)
def _fresh_memo():
    clear_text_embedding_memo()
    yield
    clear_text_embedding_memo()


def _expected(synonym):
    vecs = torch.stack([F.normalize(FakeCLIP.vector(t.format(synonym)), dim=0) for t in VILD_TEMPLATES])
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


def test_hand_computed_mean_then_normalise(tmp_path):
    fake = FakeCLIP()
    emb = get_text_embeddings(fake.encode_text, fake.tokenizer, ["cat, kitty", "dog"],
                              cache_dir=str(tmp_path), model_key="fake", batch_size=5)
    assert emb.shape == (2, 2, D) and emb.dtype == torch.float32
    torch.testing.assert_close(emb[0, 0], _expected("cat"))
    torch.testing.assert_close(emb[0, 1], _expected("kitty"))
    torch.testing.assert_close(emb[1, 0], _expected("dog"))
    # padding repeats the first synonym
    assert torch.equal(emb[1, 1], emb[1, 0])
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2, 2))
    # 3 synonyms x 14 templates in chunks of 5 prompts
    assert fake.encoded == 3 * 14 and fake.calls == -(-42 // 5)


def test_batch_size_does_not_change_result(tmp_path):
    fake = FakeCLIP()
    names = ["cat", "dog, puppy, hound", "car"]
    a = get_text_embeddings(fake.encode_text, fake.tokenizer, names, cache_dir="", model_key="a", batch_size=3)
    b = get_text_embeddings(fake.encode_text, fake.tokenizer, names, cache_dir=None, model_key="b", batch_size=128)
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 3, D)


def test_disk_cache_hit_and_memo(tmp_path):
    fake = FakeCLIP()
    names = ["cat, kitty", "dog"]
    kw = dict(cache_dir=str(tmp_path), model_key="fake")
    first = get_text_embeddings(fake.encode_text, fake.tokenizer, names, **kw)
    calls = fake.calls
    assert calls > 0
    path = text_cache_path(str(tmp_path), "fake", names)
    assert os.path.isfile(path) and os.path.dirname(path) == str(tmp_path / "fake")
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".tmp")]

    # in-process memo: no encoding even when the file is gone
    os.rename(path, path + ".bak")
    again = get_text_embeddings(fake.encode_text, fake.tokenizer, names, **kw)
    assert fake.calls == calls and torch.equal(again, first)
    os.rename(path + ".bak", path)

    # disk cache: a fresh process (memo cleared) reads the file
    clear_text_embedding_memo()
    cached = get_text_embeddings(fake.encode_text, fake.tokenizer, names, **kw)
    assert fake.calls == calls and torch.equal(cached, first)

    # a different vocabulary gets a different file
    get_text_embeddings(fake.encode_text, fake.tokenizer, names + ["car"], **kw)
    assert fake.calls > calls
    assert len([f for f in os.listdir(tmp_path / "fake") if f.endswith(".pt")]) == 2
    assert text_cache_path(str(tmp_path), "fake", names + ["car"]) != path


def test_corrupt_or_mismatched_cache_is_recomputed(tmp_path, caplog):
    fake = FakeCLIP()
    names = ["cat, kitty", "dog"]
    kw = dict(cache_dir=str(tmp_path), model_key="fake")
    first = get_text_embeddings(fake.encode_text, fake.tokenizer, names, **kw)
    path = text_cache_path(str(tmp_path), "fake", names)

    with open(path, "wb") as f:
        f.write(b"garbage")
    clear_text_embedding_memo()
    calls = fake.calls
    with caplog.at_level("WARNING"):
        again = get_text_embeddings(fake.encode_text, fake.tokenizer, names, **kw)
    assert fake.calls > calls and torch.equal(again, first)
    assert any("recomputing" in r.getMessage() for r in caplog.records)
    torch.load(path, weights_only=True)  # rewritten, readable again

    # a readable file whose content belongs to another vocabulary
    data = torch.load(path, weights_only=True)
    data["synonyms"] = [["bird"], ["fish"]]
    torch.save(data, path)
    clear_text_embedding_memo()
    calls = fake.calls
    again = get_text_embeddings(fake.encode_text, fake.tokenizer, names, **kw)
    assert fake.calls > calls and torch.equal(again, first)


def test_expands_user_in_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    fake = FakeCLIP()
    get_text_embeddings(fake.encode_text, fake.tokenizer, ["cat"], cache_dir="~/cache", model_key="k")
    assert os.path.isfile(text_cache_path(str(tmp_path / "cache"), "k", ["cat"]))


def test_with_tiny_clip_text_tower(tmp_path):
    from omgseg.modeling.backbone.openclip_backbone import OpenCLIPBackbone

    torch.manual_seed(0)
    bb = OpenCLIPBackbone(model_name="omg_tiny_rn", pretrained="")
    emb = get_text_embeddings(bb.encode_text, bb.tokenizer, ["person, people", "traffic_light"],
                              cache_dir=str(tmp_path), model_key=bb.model_key, device="cpu")
    assert emb.shape == (2, 2, bb.text_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2, 2))
    assert os.path.isdir(tmp_path / bb.model_key)


def test_class_names_from_metadata():
    from detectron2.data.catalog import Metadata

    pan = Metadata(name="a", thing_classes=["person"], stuff_classes=["person", "sky"])
    assert class_names_from_metadata(pan) == ["person", "sky"]
    inst = Metadata(name="b", thing_classes=["person", "car"])
    assert class_names_from_metadata(inst) == ["person", "car"]
    ov = Metadata(name="c", stuff_classes=["person", "sky"], ov_vocabulary=["person, people", "sky"])
    assert class_names_from_metadata(ov) == ["person, people", "sky"]
    assert class_names_from_metadata({"stuff_classes": [], "thing_classes": ["x"]}) == ["x"]
    with pytest.raises(ValueError):
        class_names_from_metadata(Metadata(name="d"))
