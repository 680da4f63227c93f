"""``OMGSegPredictor``: one image in, Detectron2-format outputs out, with a switchable vocabulary.

    predictor = OMGSegPredictor(cfg)                   # builds the model, loads MODEL.WEIGHTS
    predictor.set_vocabulary(["cat", "dog", "grass, lawn"], is_thing=[True, True, False])
    # or predictor.set_vocabulary("cat,dog,grass") / ("classes.txt") / (Vocabulary(...))
    predictor.model.ov_enabled = True                  # fuse with frozen-CLIP scores (optional)
    outputs = predictor(cv2.imread("a.jpg"))           # HWC uint8, BGR like DefaultPredictor

Outputs are the model's: ``sem_seg`` [K, H, W], ``panoptic_seg`` (ids [H, W], segments_info) and
``instances``, at the input image's size, class ids indexing the active vocabulary.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch

import detectron2.data.transforms as T
from detectron2.modeling import build_model

from ..checkpoint import OMGSegCheckpointer
from ..modeling.vocabulary import Vocabulary

__all__ = ["OMGSegPredictor", "prepare_image"]

INPUT_FORMATS = ("BGR", "RGB")


def prepare_image(image: np.ndarray, input_format: str = "BGR") -> np.ndarray:
    """Check a user image and return it as a 3-channel HWC uint8 array in ``input_format`` order.

    Args:
        image: uint8 numpy array, (H, W, 3) in ``input_format`` channel order, (H, W) or
            (H, W, 1) grayscale (replicated to 3 channels), or (H, W, 4) with alpha last
            (BGRA / RGBA; the alpha channel is dropped, as PIL's ``convert("RGB")`` and
            Detectron2's ``read_image`` do).
        input_format: "BGR" (OpenCV's ``imread``) or "RGB" (PIL, imageio).

    Raises:
        TypeError / ValueError naming ``image`` and what is expected.
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image must be a numpy array (H, W, 3) uint8 in {input_format} order, got "
            f"{type(image).__name__}"
        )
    if image.dtype != np.uint8:
        floating = np.issubdtype(image.dtype, np.floating)
        hint = " (scale [0, 1] floats by 255 first)" if floating else ""
        raise TypeError(f"image must be uint8 with values 0..255, got dtype {image.dtype}{hint}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            "image must be (H, W, 3) in "
            f"{input_format} order, (H, W) / (H, W, 1) grayscale or (H, W, 4) with alpha; got "
            f"shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def setup_predictor(predictor, cfg, input_format: str,
                    model: Optional[torch.nn.Module] = None) -> None:
    """The set-up every predictor shares: checks the formats, keeps a clone of ``cfg`` as
    ``predictor.cfg``, builds the model and loads ``MODEL.WEIGHTS`` strictly (or takes an
    already built ``model``, weights not reloaded), in eval mode, and sets ``input_format``,
    ``model_format`` and the test resize ``aug``."""
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    if cfg.INPUT.FORMAT not in INPUT_FORMATS:
        raise ValueError(
            f"cfg.INPUT.FORMAT must be one of {INPUT_FORMATS}, got {cfg.INPUT.FORMAT!r}"
        )
    predictor.cfg = cfg.clone()
    if model is None:
        model = build_model(predictor.cfg)
        OMGSegCheckpointer(predictor.cfg, model).load(predictor.cfg.MODEL.WEIGHTS)
    predictor.model = model.eval()
    predictor.input_format = input_format
    predictor.model_format = predictor.cfg.INPUT.FORMAT
    predictor.aug = T.ResizeShortestEdge(
        [predictor.cfg.INPUT.MIN_SIZE_TEST, predictor.cfg.INPUT.MIN_SIZE_TEST],
        predictor.cfg.INPUT.MAX_SIZE_TEST,
    )


class OMGSegPredictor:
    """Single-image inference (Detectron2 ``DefaultPredictor`` idiom): builds the model from
    ``cfg`` in eval mode, loads ``cfg.MODEL.WEIGHTS`` with the strict ``OMGSegCheckpointer``,
    applies the test resize (``ResizeShortestEdge(INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST)``)
    and converts the image to ``cfg.INPUT.FORMAT``.

    Images are numpy HWC uint8 in ``input_format`` order: "BGR" by default, as
    ``DefaultPredictor`` and ``cv2.imread``; pass "RGB" for PIL / imageio arrays.
    """

    def __init__(self, cfg, input_format: str = "BGR"):
        setup_predictor(self, cfg, input_format)

    def set_vocabulary(self, vocabulary, is_thing: Optional[Sequence[bool]] = None) -> None:
        """Classify against ``vocabulary`` from now on, without rebuilding the model: a
        :class:`Vocabulary`, a list of class strings (synonyms of one class comma-separated
        inside its string, e.g. ``"grass, lawn"``), a comma-separated text ``"cat,dog,grass"``
        or a file path (one class per line; :meth:`Vocabulary.from_file`). ``is_thing``: one
        flag per class (default: all things; stuff classes are merged into one segment each in
        panoptic outputs). Text embeddings are cached per vocabulary.

        The open-vocabulary fusion with frozen-CLIP scores is ``model.ov_enabled``
        (``MODEL.OMG.OV.ENABLED``)."""
        self.model.set_vocabulary(Vocabulary.coerce(vocabulary, is_thing))

    def __call__(self, image: np.ndarray) -> Dict:
        """
        Args:
            image: numpy (H, W, 3) uint8 in ``input_format`` order; grayscale (H, W) /
                (H, W, 1) and alpha (H, W, 4) are accepted (see ``prepare_image``).

        Returns:
            the model's output dict for the image, at its original size.
        """
        image = prepare_image(image, self.input_format)
        if self.input_format != self.model_format:
            image = image[:, :, ::-1]
        height, width = image.shape[:2]
        resized = self.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        with torch.no_grad():
            return self.model([{"image": tensor, "height": height, "width": width}])[0]
