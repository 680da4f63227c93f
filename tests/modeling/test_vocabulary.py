"""Official class lists on the registered datasets, the joint (ConcatOVDataset) vocabulary, and
vocabularies of datasets registered the Detectron2 way."""
import json

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.catalog import Metadata

from omgseg.data.datasets.ov_vocabularies import (
    ClassList,
    align_official_classes,
    attach_official_vocabularies,
    demo_vocabulary,
    official_class_list,
    split_synonyms,
)
from omgseg.modeling.vocabulary import (
    Vocabulary,
    class_names_from_metadata,
    dataset_vocabulary,
    merge_vocabularies,
    training_vocabulary,
)

COUNTS = {
    "coco_panoptic": (80, 53),
    "ade20k_150": (100, 50),
    "cityscapes_19": (8, 11),
    "vipseg_124": (58, 66),
    "ytvis_2019": (40, 0),
    "ytvis_2021": (40, 0),
    "th139_st101": (139, 101),
}

# registered dataset -> (official list, things only)
REGISTERED = {
    "coco_2017_val_panoptic_with_sem_seg": ("coco_panoptic", False),
    "coco_2017_val_panoptic": ("coco_panoptic", False),  # Detectron2's own registration
    "coco_2017_val": ("coco_panoptic", True),  # COCO instances: the 80 things
    "ade20k_panoptic_val": ("ade20k_150", False),
    "ade20k_sem_seg_val": ("ade20k_150", False),
    "cityscapes_fine_panoptic_val": ("cityscapes_19", False),
    "vipseg_val": ("vipseg_124", False),
    "ytvis_2019_val": ("ytvis_2019", False),
    "ytvis_2021_val": ("ytvis_2021", False),
}


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_official_lists(key):
    names, is_thing = official_class_list(key)
    things, stuff = COUNTS[key]
    assert sum(is_thing) == things and len(names) == things + stuff
    assert is_thing == [True] * things + [False] * stuff
    # unique within a kind (th139_st101 has e.g. "traffic light" as a thing and as stuff)
    assert len(set(names[:things])) == things and len(set(names[things:])) == stuff


def test_demo_vocabulary_is_th139_st101():
    demo = demo_vocabulary()
    assert isinstance(demo, ClassList) and len(demo.names) == 240 and sum(demo.is_thing) == 139
    assert demo.names[0].startswith("person,child,girl") and demo.names[138] == "rider"
    assert Vocabulary(*demo).is_thing == tuple(demo.is_thing)


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_metadata_carries_the_aligned_official_list(name):
    key, things_only = REGISTERED[name]
    meta = MetadataCatalog.get(name)
    display = list(meta.get("stuff_classes", None) or meta.thing_classes)
    vocab = Vocabulary.from_metadata(meta)
    ov = list(meta.ov_vocabulary)
    assert list(vocab.names) == ov and len(ov) == len(display)
    official = official_class_list(key)
    if things_only:
        official = ClassList([n for n, t in zip(*official) if t], [True] * sum(official.is_thing))
    # every official class exactly once, each of its own kind
    assert sorted(ov) == sorted(official.names)
    if name == "ade20k_sem_seg_val":  # Detectron2's semantic metadata: no thing ids, all stuff
        assert vocab.is_thing == (False,) * 150
        assert ov == list(MetadataCatalog.get("ade20k_panoptic_val").ov_vocabulary)
        vocab = Vocabulary.from_metadata(MetadataCatalog.get("ade20k_panoptic_val"))
    kind = dict(zip(official.names, official.is_thing))
    assert [kind[s] for s in ov] == list(vocab.is_thing)
    # a display name that is an official synonym sits on a class holding that synonym
    for shown, synonyms in zip(display, ov):
        mine = set(split_synonyms(shown))
        if any(mine & set(split_synonyms(o)) for o in official.names):
            assert mine & set(split_synonyms(synonyms)), (shown, synonyms)
    # the official lists keep each kind in dataset order
    things = iter([n for n, t in zip(*official) if t])
    stuff = iter([n for n, t in zip(*official) if not t])
    assert ov == [next(things) if t else next(stuff) for t in vocab.is_thing]


def test_hand_checked_entries():
    ade = MetadataCatalog.get("ade20k_panoptic_val")
    assert ade.stuff_classes[0] == "wall"  # display names are left alone
    assert ade.ov_vocabulary[0] == "wall,walls,brick wall,stone wall,interior wall"
    assert ade.ov_vocabulary[7] == "bed,beds"  # the first official (thing) class is id 7
    assert ade.ov_vocabulary[65] == "toilet,commode,crapper,potty"  # not "stool,stools"
    city = MetadataCatalog.get("cityscapes_fine_panoptic_val")
    assert city.ov_vocabulary[0] == "road" and city.ov_vocabulary[11] == "person"
    vip = MetadataCatalog.get("vipseg_val")
    assert vip.ov_vocabulary[:3] == ["wall", "ceiling", "door"]
    assert vip.ov_vocabulary[7] == "handrail_or_fence"
    coco = MetadataCatalog.get("coco_2017_val_panoptic_with_sem_seg")
    assert coco.stuff_classes[131] == "wall-other-merged"
    assert coco.ov_vocabulary[131] == "wall,walls"
    assert MetadataCatalog.get("ytvis_2019_val").ov_vocabulary[1] == "giant_panda"


def test_class_agnostic_and_unknown_datasets_get_no_official_list():
    assert MetadataCatalog.get("coco_2017_val_sam").get("ov_vocabulary", None) is None
    assert MetadataCatalog.get("omg_shapes_val_panoptic").get("ov_vocabulary", None) is None


def test_attach_keeps_an_existing_ov_vocabulary():
    name = "test_vocab_own_ov"
    DatasetCatalog.register(name, lambda: [])
    own = ["person, human"] + [f"c{i}" for i in range(79)]
    coco_things = list(MetadataCatalog.get("coco_2017_val").thing_classes)
    MetadataCatalog.get(name).set(thing_classes=coco_things, ov_vocabulary=own)
    assert attach_official_vocabularies([name]) == []
    assert MetadataCatalog.get(name).ov_vocabulary == own


def test_alignment_errors_name_the_problem():
    official = ClassList(["cat,kitty", "dog", "sky"], [True, True, False])
    assert align_official_classes(["sky", "dog", "cat"], [False, True, True], official) == [
        "sky", "dog", "cat,kitty"]
    with pytest.raises(ValueError, match="2 thing classes, the official list 1"):
        align_official_classes(["a", "b", "c"], [True, True, False],
                               ClassList(["x", "y", "z"], [True, False, False]), "mine")
    with pytest.raises(ValueError, match="both match"):
        align_official_classes(["kitty", "cat", "sky"], [True, True, False], official)


# ---- the joint vocabulary ----------------------------------------------------------------------
def _official_vocab(key):
    return Vocabulary(*official_class_list(key))


def test_official_merge_counts_and_th139_st101():
    keys = ["coco_panoptic", "ytvis_2019", "vipseg_124", "cityscapes_19"]
    joint, _ = merge_vocabularies([_official_vocab(k) for k in keys])
    assert (sum(joint.is_thing), len(joint) - sum(joint.is_thing)) == (136, 101)
    keys = ["coco_panoptic", "ytvis_2019", "ytvis_2021", "vipseg_124", "cityscapes_19"]
    joint, maps = merge_vocabularies([_official_vocab(k) for k in keys])
    demo = demo_vocabulary()
    assert list(joint.names) == demo.names and list(joint.is_thing) == demo.is_thing
    # YT-VIS 2019 "person" joins COCO person; "giant_panda" is new after COCO's 80 things
    assert maps[1][0].item() == 0 and joint.names[maps[1][1].item()] == "giant panda"


def test_merge_of_the_registered_training_datasets():
    names = ["coco_2017_train_panoptic_with_sem_seg", "ytvis_2019_train", "ytvis_2021_train",
             "vipseg_train", "cityscapes_fine_panoptic_train", "coco_2017_train_sam"]
    vocabs = [training_vocabulary(n) for n in names]
    assert vocabs[-1] is None  # COCO-SAM is class-agnostic
    joint, maps = merge_vocabularies(vocabs)
    demo = demo_vocabulary()
    assert [set(split_synonyms(n)) for n in joint.names] == [
        set(split_synonyms(n)) for n in demo.names]
    assert maps[-1] is None
    # each dataset's contiguous ids land on a joint class sharing a synonym and of the same kind
    for vocab, id_map in zip(vocabs[:-1], maps[:-1]):
        assert id_map.shape == (len(vocab),) and id_map.dtype == torch.long
        for i, j in enumerate(id_map.tolist()):
            assert set(split_synonyms(vocab.names[i])) & set(split_synonyms(joint.names[j]))
            assert vocab.is_thing[i] == joint.is_thing[j]
    city = vocabs[4]
    person = list(city.names).index("person")
    assert maps[4][person].item() == 0  # Cityscapes person = COCO person


def test_merge_rules_by_hand():
    a = Vocabulary(["Cat/kitty", "window", "sky_or_heaven"], [True, True, False])
    b = Vocabulary(["kitty, tabby", "window", "tabby", "heaven"], [True, False, True, False])
    joint, (ma, none, mb) = merge_vocabularies([a, None, b])
    assert none is None
    # things: cat (a, then b's "kitty, tabby"), window (thing), then b's "tabby": it shares a
    # synonym only with a class merged in, not with the first-seen "cat,kitty", so it is new.
    # stuff: sky (a, then b's "heaven"), b's stuff "window" (not merged with the thing "window")
    assert joint.names == ("cat,kitty", "window", "tabby", "sky,heaven", "window")
    assert joint.is_thing == (True, True, True, False, False)
    assert ma.tolist() == [0, 1, 3] and mb.tolist() == [0, 4, 2, 3]
    with pytest.raises(ValueError, match="class-agnostic"):
        merge_vocabularies([None])


# ---- one dataset's vocabulary -----------------------------------------------------------------
def test_dataset_vocabulary_loads_a_dataset_registered_without_classes(tmp_path):
    from detectron2.data.datasets import register_coco_instances

    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 8, "width": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 4, 4],
                         "area": 16, "iscrowd": 0, "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]]}],
        "categories": [{"id": 7, "name": "teapot"}, {"id": 3, "name": "spoon_or_ladle"}],
    }
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(coco))
    register_coco_instances("test_vocab_custom", {}, str(path), str(tmp_path))
    assert MetadataCatalog.get("test_vocab_custom").get("thing_classes", None) is None
    vocab = dataset_vocabulary("test_vocab_custom")
    # Detectron2 orders categories by id
    assert vocab.names == ("spoon_or_ladle", "teapot") and vocab.is_thing == (True, True)
    assert training_vocabulary("test_vocab_custom") == vocab
    with pytest.raises(KeyError, match="no_such_dataset_xyz"):
        dataset_vocabulary("no_such_dataset_xyz")


def test_vocabulary_from_metadata_and_class_names():
    pan = Metadata(name="a", thing_classes=["person"], stuff_classes=["person", "sky"],
                   thing_dataset_id_to_contiguous_id={1: 0})
    assert class_names_from_metadata(pan) == ["person", "sky"]
    assert Vocabulary.from_metadata(pan).is_thing == (True, False)
    inst = Metadata(name="b", thing_classes=["person", "car"])
    assert class_names_from_metadata(inst) == ["person", "car"]
    assert Vocabulary.from_metadata(inst).is_thing == (True, True)
    sem = Metadata(name="s", stuff_classes=["road", "sky"])
    assert Vocabulary.from_metadata(sem).is_thing == (False, False)
    ov = Metadata(name="c", stuff_classes=["person", "sky"],
                  ov_vocabulary=["person, people", "sky"])
    assert class_names_from_metadata(ov) == ["person, people", "sky"]
    assert class_names_from_metadata({"stuff_classes": [], "thing_classes": ["x"]}) == ["x"]
    with pytest.raises(ValueError):
        class_names_from_metadata(Metadata(name="d"))
    with pytest.raises(ValueError, match="2 class names"):
        Vocabulary(["a", "b"], [True])
