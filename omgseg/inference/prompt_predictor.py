"""``PromptPredictor``: prompt-driven segmentation with the image encoded once (SAM's
``set_image`` / ``predict`` shape).

    predictor = PromptPredictor(cfg)                     # builds the model, loads MODEL.WEIGHTS
    predictor.set_vocabulary(["cat", "dog", "grass"])    # labels of the masks
    predictor.set_image(cv2.imread("a.jpg"))             # backbone + pixel decoder, cached
    result = predictor.predict(points=[[120, 80]], boxes=[[10, 10, 200, 150]])
    result.masks            # bool [P, H, W] at the original size, prompt order
    result.scores           # mask quality: mean mask probability inside the mask
    result.labels           # class names from the active vocabulary, with result.label_scores

    # referring region (SEEM): encode a region on one image, find its kind on another
    reference = predictor.encode_region(scribbles=[[[30, 40], [60, 45]]])
    predictor.set_image(other_image)
    same_kind = predictor.find_similar(reference)

Each ``predict`` runs only the decoder (location queries, one per prompt, all in one forward) on
the cached memory; prompts are given in ORIGINAL image coordinates and mapped through the test
resize (``prompt_inputs.build_prompts``).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..modeling.prompts import (
    class_labels,
    output_mask_probs,
    prompt_results,
    query_class_embeddings,
    referring_masks,
    referring_selection,
)
from ..modeling.vocabulary import Vocabulary
from .predictor import prepare_image, setup_predictor
from .prompt_inputs import build_prompts

__all__ = ["PromptPredictor", "PromptResult", "RegionReference", "ReferringResult"]


@dataclass
class PromptResult:
    """One mask per prompt, in prompt order (points, boxes, scribbles, polygons, masks).

    ``masks`` bool [P, H, W] (original size; sigmoid > 0.5); ``scores`` [P] mask quality (mean
    mask probability inside the mask, 0 when empty); ``objectness`` [P] (the shared objectness
    head; location queries are not trained on it, official); ``labels`` [P] class names,
    ``label_ids`` [P] indices in the active vocabulary, ``label_scores`` [P] their softmax
    probability over the vocabulary (void left out); ``kinds`` [P]."""

    masks: np.ndarray
    scores: np.ndarray
    objectness: np.ndarray
    labels: List[str]
    label_ids: np.ndarray
    label_scores: np.ndarray
    kinds: List[str]


@dataclass
class RegionReference:
    """Regions encoded on a reference image: ``embeddings`` [R, D] (L2-normalised class
    embeddings of their location queries) and their ``kinds``."""

    embeddings: torch.Tensor
    kinds: List[str]


@dataclass
class ReferringResult:
    """Regions of the current image of the reference's kind, best first: ``masks`` bool
    [n, H, W] (non-overlapping), ``similarity`` [n], ``labels`` / ``label_ids`` /
    ``label_scores`` as :class:`PromptResult`."""

    masks: np.ndarray
    similarity: np.ndarray
    labels: List[str]
    label_ids: np.ndarray
    label_scores: np.ndarray


class PromptPredictor:
    """Encode an image once, then answer prompts with the shared decoder.

    Args:
        cfg: the model config (``MODEL.OMG.PROMPT.*`` for the prompt settings, the test resize
            ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``); ignored for the model when ``model``
            is given.
        input_format: channel order of the images passed in: "BGR" (OpenCV, Detectron2's
            ``DefaultPredictor``) or "RGB".
        model: an already built ``OMGSeg`` (put in eval mode; weights not reloaded).
    """

    def __init__(self, cfg, input_format: str = "BGR", model: Optional[torch.nn.Module] = None):
        setup_predictor(self, cfg, input_format, model)
        self.reset_image()

    # ---- vocabulary and image ----------------------------------------------------------------
    def set_vocabulary(self, vocabulary, is_thing: Optional[Sequence[bool]] = None) -> None:
        """Label masks with ``vocabulary`` from now on: a :class:`Vocabulary`, a list of class
        strings (comma-separated synonyms per name), a comma-separated text or a file path
        (see ``OMGSegPredictor.set_vocabulary``). With ``model.ov_enabled`` every mask's label
        also fuses its mask-pooled frozen-CLIP score."""
        self.model.set_vocabulary(Vocabulary.coerce(vocabulary, is_thing))

    def reset_image(self) -> None:
        """Forget the cached image."""
        self._memory = None
        self._clip_features = None
        self._transform = None
        self._original_size = None
        self._input_size = None
        self._padded_size = None

    @property
    def is_image_set(self) -> bool:
        return self._memory is not None

    def set_image(self, image: np.ndarray, image_format: Optional[str] = None) -> None:
        """Encode ``image`` (numpy HWC uint8 in ``image_format``, default the predictor's
        ``input_format``) once: test resize, backbone, pixel decoder and the decoder's memory
        tokens are computed and cached for every following ``predict``."""
        fmt = image_format or self.input_format
        image = prepare_image(image, fmt)
        if fmt != self.model_format:
            image = image[:, :, ::-1]
        transform = self.aug.get_transform(image)
        resized = np.ascontiguousarray(transform.apply_image(image))
        tensor = torch.as_tensor(resized.transpose(2, 0, 1).copy())
        with torch.inference_mode():
            images, memory, res5 = self.model.prompt_memory([{"image": tensor}],
                                                            return_clip_features=True)
        self._memory = memory
        self._clip_features = res5  # for the open-vocabulary fusion (model.ov_enabled)
        self._transform = transform
        self._original_size = tuple(image.shape[:2])
        self._input_size = tuple(images.image_sizes[0])
        self._padded_size = tuple(images.tensor.shape[-2:])

    def _require_image(self) -> None:
        if self._memory is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")

    def _vocabulary(self) -> Vocabulary:
        vocab = self.model.default_vocabulary
        if vocab is None:
            raise ValueError("No vocabulary for the labels: call set_vocabulary([...]) or set "
                             "DATASETS.TEST")
        return vocab

    # ---- prompts -----------------------------------------------------------------------------
    def _prompts(self, **kwargs):
        return build_prompts(
            self._transform, self._original_size, self._input_size,
            max_prompts=self.model.prompt_settings.max_prompts, **kwargs,
        )

    def _decode(self, prompts):
        vocab = self._vocabulary()
        text = self.model.text_embeddings(vocab.names)
        with torch.inference_mode():
            outputs = self.model.decode_prompt_sets(self._memory, [prompts], text)
            outputs = self._open_vocab(outputs, text, vocab)
        return outputs, vocab

    def _open_vocab(self, outputs: dict, text: torch.Tensor, vocab: Vocabulary) -> dict:
        """``outputs`` with the class scores fused with the frozen-CLIP scores of their masks
        when ``model.ov_enabled`` (``OMGSeg.open_vocab_scores``), else unchanged."""
        if not getattr(self.model, "ov_enabled", False):
            return outputs
        fused = self.model.open_vocab_scores(self._clip_features, outputs["pred_masks"],
                                             outputs["pred_logits"], text, vocab)
        return dict(outputs, pred_logits=fused)

    def predict(
        self,
        points=None,
        point_labels=None,
        boxes=None,
        scribbles=None,
        polygons=None,
        masks=None,
        scribble_width: float = 3.0,
    ) -> PromptResult:
        """Masks for prompts on the cached image (ORIGINAL image coordinates; forms in
        ``omgseg/inference/prompt_inputs.py``): one decoder forward for all of them.

        Raises:
            ValueError naming the prompt (e.g. ``boxes[1] (box)``) for a bad prompt.
        """
        self._require_image()
        prompts = self._prompts(points=points, point_labels=point_labels, boxes=boxes,
                                scribbles=scribbles, polygons=polygons, masks=masks,
                                scribble_width=scribble_width)
        outputs, vocab = self._decode(prompts)
        n = len(prompts)
        with torch.inference_mode():
            res = prompt_results(
                outputs["pred_logits"][0, :n], outputs["pred_masks"][0, :n, 0],
                outputs["pred_objectness"][0, :n], self._padded_size, self._input_size,
                self._original_size,
            )
        ids = res.pred_classes.numpy(force=True)  # force: copied from the device if not CPU
        return PromptResult(
            masks=res.pred_masks.numpy(force=True),
            scores=res.scores.numpy(force=True),
            objectness=res.objectness.numpy(force=True),
            labels=[vocab.names[i] for i in ids],
            label_ids=ids,
            label_scores=res.class_scores.numpy(force=True),
            kinds=list(prompts.kinds),
        )

    # ---- referring regions -------------------------------------------------------------------
    def encode_region(self, points=None, boxes=None, scribbles=None, polygons=None, masks=None,
                      scribble_width: float = 3.0) -> RegionReference:
        """Encode regions of the cached image (a click, box, scribble, polygon or mask) as
        references for :meth:`find_similar` on other images."""
        self._require_image()
        prompts = self._prompts(points=points, boxes=boxes, scribbles=scribbles,
                                polygons=polygons, masks=masks, scribble_width=scribble_width)
        outputs, _ = self._decode(prompts)
        with torch.inference_mode():
            emb = query_class_embeddings(self.model.mask_decoder, outputs,
                                         self._memory.mask_features)
        return RegionReference(emb[0, : len(prompts)].clone(), list(prompts.kinds))

    def find_similar(self, reference: RegionReference,
                     threshold: Optional[float] = None) -> ReferringResult:
        """Regions of the cached image of the same kind as ``reference``: the semantic queries
        of the image kept by the panoptic selection whose class embedding has cosine similarity
        >= ``threshold`` (default ``MODEL.OMG.PROMPT.REFERRING_THRESHOLD``) to a reference."""
        self._require_image()
        if threshold is None:
            threshold = self.model.prompt_settings.referring_threshold
        vocab = self._vocabulary()
        text = self.model.text_embeddings(vocab.names)
        decoder = self.model.mask_decoder
        with torch.inference_mode():
            outputs = decoder(None, None, 1, text, return_aux_outputs=False, memory=self._memory)
            outputs = self._open_vocab(outputs, text, vocab)
            emb = query_class_embeddings(decoder, outputs, self._memory.mask_features)[0]
            mask_cls = outputs["pred_logits"][0]
            matches = referring_selection(
                reference.embeddings.to(emb.device), emb, mask_cls, float(threshold),
                self.model.object_mask_threshold,
            )
            probs = output_mask_probs(outputs["pred_masks"][0, matches.query_ids, 0],
                                      self._padded_size, self._input_size, self._original_size)
            masks, keep = referring_masks(matches.similarity, probs,
                                          self.model.overlap_threshold)
            ids, scores = class_labels(mask_cls[matches.query_ids[keep]])
        ids = ids.cpu().numpy()
        return ReferringResult(
            masks=masks.cpu().numpy(),
            similarity=matches.similarity[keep].cpu().numpy(),
            labels=[vocab.names[i] for i in ids],
            label_ids=ids,
            label_scores=scores.cpu().numpy(),
        )
