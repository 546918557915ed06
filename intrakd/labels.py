"""Official label tables shared by the dataset loaders and the evaluators (one place for both).

ApolloScape lane marks: dataset-api ``lane_segmentation/helpers/laneMarkDetection.py`` (38 entries).
Cityscapes: cityscapesScripts ``helpers/labels.py`` (34 ids + license plate).
LLAMAS lanes: unsupervised_llamas ``label_scripts/dataset_constants.py`` (the four evaluated lanes and their colours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Label:
    name: str
    id: int
    train_id: int
    category: str
    ignore_in_eval: bool
    color: tuple[int, int, int]  # RGB


# fmt: off
APOLLO_LABELS: tuple[Label, ...] = (
    Label("void",       0,   0,  "void",        False, (0, 0, 0)),
    Label("s_w_d",      200, 1,  "dividing",    False, (70, 130, 180)),
    Label("s_y_d",      204, 2,  "dividing",    False, (220, 20, 60)),
    Label("ds_w_dn",    213, 3,  "dividing",    True,  (128, 0, 128)),
    Label("ds_y_dn",    209, 4,  "dividing",    False, (255, 0, 0)),
    Label("sb_w_do",    206, 5,  "dividing",    True,  (0, 0, 60)),
    Label("sb_y_do",    207, 6,  "dividing",    True,  (0, 60, 100)),
    Label("b_w_g",      201, 7,  "guiding",     False, (0, 0, 142)),
    Label("b_y_g",      203, 8,  "guiding",     False, (119, 11, 32)),
    Label("db_w_g",     211, 9,  "guiding",     True,  (244, 35, 232)),
    Label("db_y_g",     208, 10, "guiding",     True,  (0, 0, 160)),
    Label("db_w_s",     216, 11, "stopping",    True,  (153, 153, 153)),
    Label("s_w_s",      217, 12, "stopping",    False, (220, 220, 0)),
    Label("ds_w_s",     215, 13, "stopping",    True,  (250, 170, 30)),
    Label("s_w_c",      218, 14, "chevron",     True,  (102, 102, 156)),
    Label("s_y_c",      219, 15, "chevron",     True,  (128, 0, 0)),
    Label("s_w_p",      210, 16, "parking",     False, (128, 64, 128)),
    Label("s_n_p",      232, 17, "parking",     True,  (238, 232, 170)),
    Label("c_wy_z",     214, 18, "zebra",       False, (190, 153, 153)),
    Label("a_w_u",      202, 19, "thru/turn",   True,  (0, 0, 230)),
    Label("a_w_t",      220, 20, "thru/turn",   False, (128, 128, 0)),
    Label("a_w_tl",     221, 21, "thru/turn",   False, (128, 78, 160)),
    Label("a_w_tr",     222, 22, "thru/turn",   False, (150, 100, 100)),
    Label("a_w_tlr",    231, 23, "thru/turn",   True,  (255, 165, 0)),
    Label("a_w_l",      224, 24, "thru/turn",   False, (180, 165, 180)),
    Label("a_w_r",      225, 25, "thru/turn",   False, (107, 142, 35)),
    Label("a_w_lr",     226, 26, "thru/turn",   False, (201, 255, 229)),
    Label("a_n_lu",     230, 27, "thru/turn",   True,  (0, 191, 255)),
    Label("a_w_tu",     228, 28, "thru/turn",   True,  (51, 255, 51)),
    Label("a_w_m",      229, 29, "thru/turn",   True,  (250, 128, 114)),
    Label("a_y_t",      233, 30, "thru/turn",   True,  (127, 255, 0)),
    Label("b_n_sr",     205, 31, "reduction",   False, (255, 128, 0)),
    Label("d_wy_za",    212, 32, "attention",   True,  (0, 255, 255)),
    Label("r_wy_np",    227, 33, "no parking",  False, (178, 132, 190)),
    Label("vom_wy_n",   223, 34, "others",      True,  (128, 128, 64)),
    Label("om_n_n",     250, 35, "others",      False, (102, 0, 204)),
    Label("noise",      249, 255, "ignored",    True,  (0, 153, 153)),
    Label("ignored",    255, 255, "ignored",    True,  (255, 255, 255)),
)

CITYSCAPES_LABELS: tuple[Label, ...] = (
    Label("unlabeled",            0,  255, "void",         True,  (0, 0, 0)),
    Label("ego vehicle",          1,  255, "void",         True,  (0, 0, 0)),
    Label("rectification border", 2,  255, "void",         True,  (0, 0, 0)),
    Label("out of roi",           3,  255, "void",         True,  (0, 0, 0)),
    Label("static",               4,  255, "void",         True,  (0, 0, 0)),
    Label("dynamic",              5,  255, "void",         True,  (111, 74, 0)),
    Label("ground",               6,  255, "void",         True,  (81, 0, 81)),
    Label("road",                 7,  0,   "flat",         False, (128, 64, 128)),
    Label("sidewalk",             8,  1,   "flat",         False, (244, 35, 232)),
    Label("parking",              9,  255, "flat",         True,  (250, 170, 160)),
    Label("rail track",           10, 255, "flat",         True,  (230, 150, 140)),
    Label("building",             11, 2,   "construction", False, (70, 70, 70)),
    Label("wall",                 12, 3,   "construction", False, (102, 102, 156)),
    Label("fence",                13, 4,   "construction", False, (190, 153, 153)),
    Label("guard rail",           14, 255, "construction", True,  (180, 165, 180)),
    Label("bridge",               15, 255, "construction", True,  (150, 100, 100)),
    Label("tunnel",               16, 255, "construction", True,  (150, 120, 90)),
    Label("pole",                 17, 5,   "object",       False, (153, 153, 153)),
    Label("polegroup",            18, 255, "object",       True,  (153, 153, 153)),
    Label("traffic light",        19, 6,   "object",       False, (250, 170, 30)),
    Label("traffic sign",         20, 7,   "object",       False, (220, 220, 0)),
    Label("vegetation",           21, 8,   "nature",       False, (107, 142, 35)),
    Label("terrain",              22, 9,   "nature",       False, (152, 251, 152)),
    Label("sky",                  23, 10,  "sky",          False, (70, 130, 180)),
    Label("person",               24, 11,  "human",        False, (220, 20, 60)),
    Label("rider",                25, 12,  "human",        False, (255, 0, 0)),
    Label("car",                  26, 13,  "vehicle",      False, (0, 0, 142)),
    Label("truck",                27, 14,  "vehicle",      False, (0, 0, 70)),
    Label("bus",                  28, 15,  "vehicle",      False, (0, 60, 100)),
    Label("caravan",              29, 255, "vehicle",      True,  (0, 0, 90)),
    Label("trailer",              30, 255, "vehicle",      True,  (0, 0, 110)),
    Label("train",                31, 16,  "vehicle",      False, (0, 80, 100)),
    Label("motorcycle",           32, 17,  "vehicle",      False, (0, 0, 230)),
    Label("bicycle",              33, 18,  "vehicle",      False, (119, 11, 32)),
    Label("license plate",        -1, -1,  "vehicle",      True,  (0, 0, 142)),
)
# fmt: on

#: IntRA-KD trains ApolloScape with 37 outputs: trainIds 0..35 plus 36 = noise (249) and ignored (255) merged.
#: LLAMAS training classes: background, then the four evaluated lanes (left to right: l1, l0, r0, r1).
LLAMAS_CLASSES = ("background", "l1", "l0", "r0", "r1")
#: unsupervised_llamas ``dataset_constants.DICT_COLORS`` for the four evaluated lanes (BGR).
LLAMAS_LANE_COLOURS = {"l1": (0, 0, 255), "l0": (24, 140, 34), "r0": (255, 0, 0), "r1": (0, 255, 255)}

APOLLO_NUM_CLASSES = 37
APOLLO_MERGED_TRAIN_ID = 36
CITYSCAPES_NUM_CLASSES = 19
IGNORE_INDEX = 255


def _lut(pairs: dict[int, int], fill: int) -> np.ndarray:
    lut = np.full(256, fill, dtype=np.int64)
    for k, v in pairs.items():
        lut[k] = v
    return lut


#: label ID (0..255) -> IntRA-KD training class (0..36); -1 for values that are not in the table.
APOLLO_ID_TO_TRAIN = _lut(
    {lab.id: (APOLLO_MERGED_TRAIN_ID if lab.train_id == 255 else lab.train_id) for lab in APOLLO_LABELS}, -1
)
#: IntRA-KD training class (0..36) -> label ID written in submissions (36 -> noise 249, as the official script).
APOLLO_TRAIN_TO_ID = np.array(
    [next(lab.id for lab in APOLLO_LABELS if lab.train_id == t) for t in range(36)] + [249], dtype=np.uint8
)
#: label IDs evaluated by the official script (ignoreInEval False), void included.
APOLLO_EVAL_IDS = tuple(lab.id for lab in APOLLO_LABELS if not lab.ignore_in_eval)

#: Cityscapes label ID (0..33) -> trainId (0..18, 255 ignore); -1 for ids outside the table.
CITYSCAPES_ID_TO_TRAIN = _lut({lab.id: lab.train_id for lab in CITYSCAPES_LABELS if lab.id >= 0}, -1)
CITYSCAPES_TRAIN_TO_ID = np.array(
    [next(lab.id for lab in CITYSCAPES_LABELS if lab.train_id == t) for t in range(19)], dtype=np.uint8
)
CITYSCAPES_EVAL_IDS = tuple(lab.id for lab in CITYSCAPES_LABELS if not lab.ignore_in_eval and lab.id >= 0)


def palette(labels: tuple[Label, ...]) -> list[int]:
    """A 768-entry PIL palette that paints each label ID in its table colour (unused entries black)."""
    pal = [0] * 768
    for lab in labels:
        if 0 <= lab.id < 256:
            pal[3 * lab.id : 3 * lab.id + 3] = list(lab.color)
    return pal
