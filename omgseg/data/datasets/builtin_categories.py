"""Category tables of the real datasets that Detectron2 does not ship (ADE20K-150 panoptic,
VIPSeg-124, YouTube-VIS 2019 / 2021), as facts of the public datasets, plus builders.

COCO (133 panoptic / 80 instance classes) and Cityscapes come from ``detectron2.data.datasets.
builtin_meta``; ADE20K names come from Detectron2's ``ADE20K_SEM_SEG_CATEGORIES``.

Every table is a list of dicts ``{"id", "name", "isthing", "color"}`` in contiguous-id order.
"""
from typing import Dict, List

from detectron2.data.datasets.builtin_meta import ADE20K_SEM_SEG_CATEGORIES

__all__ = [
    "ADE20K_150_CATEGORIES",
    "ADE20K_INSTANCE100_TO_SEM150",
    "VIPSEG_CATEGORIES",
    "YTVIS_2019_CATEGORIES",
    "YTVIS_2021_CATEGORIES",
    "readable_name",
]


def readable_name(raw: str) -> str:
    """``"parasol_or_umbrella"`` -> ``"parasol, umbrella"`` (synonyms split by commas),
    ``"giant_panda"`` -> ``"giant panda"``; lower case."""
    return ", ".join(part.replace("_", " ").strip() for part in raw.split("_or_")).lower()


# ---------------------------------------------------------------------------------------------
# ADE20K (SceneParsing 150). Dataset ids are 0..149 (the semantic PNG value minus one), as in
# the Mask2Former ADE20K panoptic json. The 100 "thing" classes are those of the ADE20K instance
# annotations (annotations_instance/, "Instance100"); this maps an Instance100 class id (the R
# channel of an instance PNG, 1-based) to its SceneParse150 class id (1-based).
ADE20K_INSTANCE100_TO_SEM150: Dict[int, int] = dict(zip(range(1, 101), [
    8, 9, 11, 13, 15, 16, 19, 20, 21, 23, 24, 25, 28, 31, 32, 33, 34, 36, 37, 38,
    39, 40, 42, 43, 44, 45, 46, 48, 50, 51, 54, 56, 57, 58, 59, 63, 65, 66, 67, 68,
    70, 71, 72, 73, 74, 75, 76, 77, 79, 81, 82, 83, 84, 86, 87, 88, 89, 90, 91, 93,
    94, 96, 98, 99, 103, 104, 105, 108, 109, 111, 112, 113, 116, 117, 119, 120, 121, 122, 124, 125,
    126, 127, 128, 130, 131, 133, 134, 135, 136, 137, 138, 139, 140, 143, 144, 145, 147, 148, 149,
    150,
]))

# The standard ADE20K-150 visualisation palette (RGB), index = dataset id.
_ADE20K_PALETTE = [
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3),
    (120, 120, 80), (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7),
    (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70), (8, 255, 51),
    (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3),
    (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71),
    (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7),
    (255, 122, 8), (0, 255, 20), (255, 8, 41), (255, 5, 153), (6, 51, 255),
    (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 200), (250, 10, 15),
    (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0),
    (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112),
    (0, 255, 133), (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0),
    (0, 143, 255), (51, 255, 0), (0, 82, 255), (0, 255, 41), (0, 255, 173),
    (10, 0, 255), (173, 255, 0), (0, 255, 153), (255, 92, 0), (255, 0, 255),
    (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20), (255, 184, 184),
    (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255),
    (0, 122, 255), (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0),
    (143, 255, 0), (82, 0, 255), (163, 255, 0), (255, 235, 0), (8, 184, 170),
    (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31), (0, 184, 255),
    (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255), (112, 224, 255),
    (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235),
    (245, 0, 255), (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0),
    (0, 204, 255), (20, 0, 255), (255, 255, 0), (0, 153, 255), (0, 41, 255),
    (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255), (0, 245, 255),
    (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255), (184, 255, 0),
    (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
]


def _ade20k_categories() -> List[Dict]:
    thing_ids = {sem - 1 for sem in ADE20K_INSTANCE100_TO_SEM150.values()}
    assert len(ADE20K_SEM_SEG_CATEGORIES) == 150 and len(_ADE20K_PALETTE) == 150
    return [
        {"id": i, "name": name, "isthing": int(i in thing_ids), "color": list(_ADE20K_PALETTE[i])}
        for i, name in enumerate(ADE20K_SEM_SEG_CATEGORIES)
    ]


ADE20K_150_CATEGORIES: List[Dict] = _ade20k_categories()
assert sum(c["isthing"] for c in ADE20K_150_CATEGORIES) == 100

# ---------------------------------------------------------------------------------------------
# VIPSeg (124 classes: 58 things, 66 stuff). Dataset ids 0..123 as in panoVIPSeg_categories.json
# (the raw mask value minus one). (id, raw name, isthing, color)
_VIPSEG_RAW = [
    (0, "wall", 0, (120, 120, 120)), (1, "ceiling", 0, (180, 120, 120)),
    (2, "door", 1, (6, 230, 230)), (3, "stair", 0, (80, 50, 50)),
    (4, "ladder", 1, (4, 200, 3)), (5, "escalator", 0, (120, 120, 80)),
    (6, "Playground_slide", 0, (140, 140, 140)), (7, "handrail_or_fence", 0, (204, 5, 255)),
    (8, "window", 1, (230, 230, 230)), (9, "rail", 0, (4, 250, 7)),
    (10, "goal", 1, (224, 5, 255)), (11, "pillar", 0, (235, 255, 7)),
    (12, "pole", 0, (150, 5, 61)), (13, "floor", 0, (120, 120, 70)),
    (14, "ground", 0, (8, 255, 51)), (15, "grass", 0, (255, 6, 82)),
    (16, "sand", 0, (143, 255, 140)), (17, "athletic_field", 0, (204, 255, 4)),
    (18, "road", 0, (255, 51, 7)), (19, "path", 0, (204, 70, 3)),
    (20, "crosswalk", 0, (0, 102, 200)), (21, "building", 0, (61, 230, 250)),
    (22, "house", 0, (255, 6, 51)), (23, "bridge", 0, (11, 102, 255)),
    (24, "tower", 0, (255, 7, 71)), (25, "windmill", 0, (255, 9, 224)),
    (26, "well_or_well_lid", 0, (9, 7, 230)), (27, "other_construction", 0, (220, 220, 220)),
    (28, "sky", 0, (255, 9, 92)), (29, "mountain", 0, (112, 9, 255)),
    (30, "stone", 0, (8, 255, 214)), (31, "wood", 0, (7, 255, 224)),
    (32, "ice", 0, (255, 184, 6)), (33, "snowfield", 0, (10, 255, 71)),
    (34, "grandstand", 0, (255, 41, 10)), (35, "sea", 0, (7, 255, 255)),
    (36, "river", 0, (224, 255, 8)), (37, "lake", 0, (102, 8, 255)),
    (38, "waterfall", 0, (255, 61, 6)), (39, "water", 0, (255, 194, 7)),
    (40, "billboard_or_Bulletin_Board", 0, (255, 122, 8)), (41, "sculpture", 1, (0, 255, 20)),
    (42, "pipeline", 0, (255, 8, 41)), (43, "flag", 1, (255, 5, 153)),
    (44, "parasol_or_umbrella", 1, (6, 51, 255)), (45, "cushion_or_carpet", 0, (235, 12, 255)),
    (46, "tent", 1, (160, 150, 20)), (47, "roadblock", 1, (0, 163, 255)),
    (48, "car", 1, (140, 140, 140)), (49, "bus", 1, (250, 10, 15)),
    (50, "truck", 1, (20, 255, 0)), (51, "bicycle", 1, (31, 255, 0)),
    (52, "motorcycle", 1, (255, 31, 0)), (53, "wheeled_machine", 0, (255, 224, 0)),
    (54, "ship_or_boat", 1, (153, 255, 0)), (55, "raft", 1, (0, 0, 255)),
    (56, "airplane", 1, (255, 71, 0)), (57, "tyre", 0, (0, 235, 255)),
    (58, "traffic_light", 0, (0, 173, 255)), (59, "lamp", 0, (31, 0, 255)),
    (60, "person", 1, (11, 200, 200)), (61, "cat", 1, (255, 82, 0)),
    (62, "dog", 1, (0, 255, 245)), (63, "horse", 1, (0, 61, 255)),
    (64, "cattle", 1, (0, 255, 112)), (65, "other_animal", 1, (0, 255, 133)),
    (66, "tree", 0, (255, 0, 0)), (67, "flower", 0, (255, 163, 0)),
    (68, "other_plant", 0, (255, 102, 0)), (69, "toy", 0, (194, 255, 0)),
    (70, "ball_net", 0, (0, 143, 255)), (71, "backboard", 0, (51, 255, 0)),
    (72, "skateboard", 1, (0, 82, 255)), (73, "bat", 0, (0, 255, 41)),
    (74, "ball", 1, (0, 255, 173)), (75, "cupboard_or_showcase_or_storage_rack", 0, (10, 0, 255)),
    (76, "box", 1, (173, 255, 0)), (77, "traveling_case_or_trolley_case", 1, (0, 255, 153)),
    (78, "basket", 1, (255, 92, 0)), (79, "bag_or_package", 1, (255, 0, 255)),
    (80, "trash_can", 0, (255, 0, 245)), (81, "cage", 0, (255, 0, 102)),
    (82, "plate", 1, (255, 173, 0)), (83, "tub_or_bowl_or_pot", 1, (255, 0, 20)),
    (84, "bottle_or_cup", 1, (255, 184, 184)), (85, "barrel", 1, (0, 31, 255)),
    (86, "fishbowl", 1, (0, 255, 61)), (87, "bed", 1, (0, 71, 255)),
    (88, "pillow", 1, (255, 0, 204)), (89, "table_or_desk", 1, (0, 255, 194)),
    (90, "chair_or_seat", 1, (0, 255, 82)), (91, "bench", 1, (0, 10, 255)),
    (92, "sofa", 1, (0, 112, 255)), (93, "shelf", 0, (51, 0, 255)),
    (94, "bathtub", 0, (0, 194, 255)), (95, "gun", 1, (0, 122, 255)),
    (96, "commode", 1, (0, 255, 163)), (97, "roaster", 1, (255, 153, 0)),
    (98, "other_machine", 0, (0, 255, 10)), (99, "refrigerator", 1, (255, 112, 0)),
    (100, "washing_machine", 1, (143, 255, 0)), (101, "Microwave_oven", 1, (82, 0, 255)),
    (102, "fan", 1, (163, 255, 0)), (103, "curtain", 0, (255, 235, 0)),
    (104, "textiles", 0, (8, 184, 170)), (105, "clothes", 0, (133, 0, 255)),
    (106, "painting_or_poster", 1, (0, 255, 92)), (107, "mirror", 1, (184, 0, 255)),
    (108, "flower_pot_or_vase", 1, (255, 0, 31)), (109, "clock", 1, (0, 184, 255)),
    (110, "book", 0, (0, 214, 255)), (111, "tool", 0, (255, 0, 112)),
    (112, "blackboard", 0, (92, 255, 0)), (113, "tissue", 0, (0, 224, 255)),
    (114, "screen_or_television", 1, (112, 224, 255)), (115, "computer", 1, (70, 184, 160)),
    (116, "printer", 1, (163, 0, 255)), (117, "Mobile_phone", 1, (153, 0, 255)),
    (118, "keyboard", 1, (71, 255, 0)), (119, "other_electronic_product", 0, (255, 0, 163)),
    (120, "fruit", 0, (255, 204, 0)), (121, "food", 0, (255, 0, 143)),
    (122, "instrument", 1, (0, 255, 235)), (123, "train", 1, (133, 255, 0)),
]
VIPSEG_CATEGORIES: List[Dict] = [
    {"id": i, "name": readable_name(n), "raw_name": n, "isthing": t, "color": list(c)}
    for i, n, t, c in _VIPSEG_RAW
]
assert len(VIPSEG_CATEGORIES) == 124
assert sum(c["isthing"] for c in VIPSEG_CATEGORIES) == 58

# ---------------------------------------------------------------------------------------------
# YouTube-VIS: 40 classes each, dataset ids 1..40 (different lists in 2019 and 2021).
_YTVIS_2019 = [
    ("person", (220, 20, 60)), ("giant_panda", (0, 82, 0)), ("lizard", (119, 11, 32)),
    ("parrot", (165, 42, 42)), ("skateboard", (134, 134, 103)), ("sedan", (0, 0, 142)),
    ("ape", (255, 109, 65)), ("dog", (0, 226, 252)), ("snake", (5, 121, 0)),
    ("monkey", (0, 60, 100)), ("hand", (250, 170, 30)), ("rabbit", (100, 170, 30)),
    ("duck", (179, 0, 194)), ("cat", (255, 77, 255)), ("cow", (120, 166, 157)),
    ("fish", (73, 77, 174)), ("train", (0, 80, 100)), ("horse", (182, 182, 255)),
    ("turtle", (0, 143, 149)), ("bear", (174, 57, 255)), ("motorbike", (0, 0, 230)),
    ("giraffe", (72, 0, 118)), ("leopard", (255, 179, 240)), ("fox", (0, 125, 92)),
    ("deer", (209, 0, 151)), ("owl", (188, 208, 182)), ("surfboard", (145, 148, 174)),
    ("airplane", (106, 0, 228)), ("truck", (0, 0, 70)), ("zebra", (199, 100, 0)),
    ("tiger", (166, 196, 102)), ("elephant", (110, 76, 0)), ("snowboard", (133, 129, 255)),
    ("boat", (0, 0, 192)), ("shark", (183, 130, 88)), ("mouse", (130, 114, 135)),
    ("frog", (107, 142, 35)), ("eagle", (0, 228, 0)), ("earless_seal", (174, 255, 243)),
    ("tennis_racket", (255, 208, 186)),
]
_YTVIS_2021 = [
    ("airplane", (106, 0, 228)), ("bear", (174, 57, 255)), ("bird", (255, 109, 65)),
    ("boat", (0, 0, 192)), ("car", (0, 0, 142)), ("cat", (255, 77, 255)),
    ("cow", (120, 166, 157)), ("deer", (209, 0, 151)), ("dog", (0, 226, 252)),
    ("duck", (179, 0, 194)), ("earless_seal", (174, 255, 243)), ("elephant", (110, 76, 0)),
    ("fish", (73, 77, 174)), ("flying_disc", (250, 170, 30)), ("fox", (0, 125, 92)),
    ("frog", (107, 142, 35)), ("giant_panda", (0, 82, 0)), ("giraffe", (72, 0, 118)),
    ("horse", (182, 182, 255)), ("leopard", (255, 179, 240)), ("lizard", (119, 11, 32)),
    ("monkey", (0, 60, 100)), ("motorbike", (0, 0, 230)), ("mouse", (130, 114, 135)),
    ("parrot", (165, 42, 42)), ("person", (220, 20, 60)), ("rabbit", (100, 170, 30)),
    ("shark", (183, 130, 88)), ("skateboard", (134, 134, 103)), ("snake", (5, 121, 0)),
    ("snowboard", (133, 129, 255)), ("squirrel", (188, 208, 182)), ("surfboard", (145, 148, 174)),
    ("tennis_racket", (255, 208, 186)), ("tiger", (166, 196, 102)), ("train", (0, 80, 100)),
    ("truck", (0, 0, 70)), ("turtle", (0, 143, 149)), ("whale", (0, 228, 0)),
    ("zebra", (199, 100, 0)),
]


def _ytvis(table) -> List[Dict]:
    return [
        {"id": i + 1, "name": readable_name(n), "raw_name": n, "isthing": 1, "color": list(c)}
        for i, (n, c) in enumerate(table)
    ]


YTVIS_2019_CATEGORIES: List[Dict] = _ytvis(_YTVIS_2019)
YTVIS_2021_CATEGORIES: List[Dict] = _ytvis(_YTVIS_2021)
assert len(YTVIS_2019_CATEGORIES) == 40 and len(YTVIS_2021_CATEGORIES) == 40
