"""``OMGSeg``: one model for image / video / prompt segmentation (Detectron2 meta-architecture).

Shape shorthand: B clips, T frames per clip, N = B*T frames, Q queries, K classes of the active
vocabulary, S synonyms, D CLIP text dim, H x W padded input, h x w = H/4 x W/4.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList, Instances

from .build import build_pixel_decoder, build_transformer_decoder
from . import open_vocab
from .clip.text_embeddings import TextEmbeddingCache
from .criterion import SetCriterion
from .postprocessing import frame_inference
from .prompts import PromptSettings, decode_prompts, prompt_results
from .video import (
    ClipPrediction,
    PostprocessSettings,
    clip_length_for,
    final_query_features,
    infer_video,
    select_video_tasks,
    split_video,
    track_prompts,
)
from .vocabulary import Vocabulary, dataset_vocabulary, merge_vocabularies, training_vocabulary

__all__ = ["OMGSeg", "Vocabulary", "training_groups"]


def training_groups(
    batched_inputs: Sequence[dict], lengths: Sequence[int]
) -> List[Tuple[bool, int, List[int]]]:
    """Samples of a training batch that one decoder call can take together: ``(is_prompt, T,
    sample indices)`` per group, in order of first appearance. Prompt samples (``task``
    "prompt") use location queries, the others the semantic queries; a group also shares the
    clip length T (memory tokens are T * h * w)."""
    groups: Dict[Tuple[bool, int], List[int]] = {}
    for i, (inp, t) in enumerate(zip(batched_inputs, lengths)):
        groups.setdefault((inp.get("task") == "prompt", int(t)), []).append(i)
    return [(is_prompt, t, idx) for (is_prompt, t), idx in groups.items()]


@META_ARCH_REGISTRY.register()
class OMGSeg(nn.Module):
    """Frozen CLIP backbone -> deformable pixel decoder -> shared mask decoder -> CLIP classifier.

    Training input: the clip dicts of ``PseudoVideoLSJDatasetMapper`` (``"video"`` [T, 3, H, W],
    ``"instances"`` per frame). Inference input: Detectron2's ``{"image": [3, H, W], ...}`` or a
    clip ``{"video": [T, 3, H, W], ...}``. Per image the output holds ``sem_seg`` [K, H, W],
    ``panoptic_seg`` (ids [H, W], segments_info) and ``instances``, per the ``*_ON`` switches; a
    clip gives ``{"frames": [that dict per frame]}``. A whole video ``{"video_frames":
    Sequence of HWC uint8 frames, ...}`` is run clip by clip with query association
    (:meth:`video_inference`).
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        pixel_decoder: nn.Module,
        mask_decoder: nn.Module,
        criterion: SetCriterion,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        size_divisibility: int,
        text_cache_dir: str,
        text_batch_size: int,
        default_vocabulary: Optional[Vocabulary],
        train_datasets: Sequence[str] = (),
        semantic_on: bool,
        instance_on: bool,
        panoptic_on: bool,
        object_mask_threshold: float,
        overlap_threshold: float,
        test_topk_per_image: int,
        sem_seg_postprocess_before_inference: bool,
        video_clip_length: int = 0,
        num_vos_proposals: int = 25,
        video_tmp_dir: str = "",
        video_progress: bool = True,
        prompt_settings: Optional[PromptSettings] = None,
        ov_enabled: bool = False,
        ov_alpha: float = 0.4,
        ov_beta: float = 0.8,
    ):
        super().__init__()
        self.backbone = backbone
        self.pixel_decoder = pixel_decoder
        self.mask_decoder = mask_decoder
        self.criterion = criterion
        self.size_divisibility = max(size_divisibility, backbone.size_divisibility)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.text_cache = TextEmbeddingCache(text_cache_dir)
        self.text_batch_size = text_batch_size
        self.default_vocabulary = default_vocabulary
        # Training datasets whose vocabularies form the joint one (DATASETS.TRAIN, then any other
        # dataset met in training); the merge is cached per member list.
        self._joint_members: List[str] = list(train_datasets)
        self._joint: Dict[tuple, Tuple[Vocabulary, Dict[str, Optional[torch.Tensor]]]] = {}
        self.semantic_on = semantic_on
        self.instance_on = instance_on
        self.panoptic_on = panoptic_on
        self.object_mask_threshold = object_mask_threshold
        self.overlap_threshold = overlap_threshold
        self.test_topk_per_image = test_topk_per_image
        self.sem_seg_postprocess_before_inference = sem_seg_postprocess_before_inference
        self.video_clip_length = int(video_clip_length)
        self.num_vos_proposals = int(num_vos_proposals)
        self.video_tmp_dir = video_tmp_dir
        self.video_progress = bool(video_progress)
        self.prompt_settings = prompt_settings or PromptSettings()
        # Open-vocabulary fusion at inference (``open_vocab.py``); plain attributes, so it can be
        # switched (``model.ov_enabled = True``) and re-weighted at run time without rebuilding.
        self.ov_enabled = bool(ov_enabled)
        self.ov_alpha = float(ov_alpha)
        self.ov_beta = float(ov_beta)
        self._seen: Dict[tuple, torch.Tensor] = {}

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        pixel_decoder = build_pixel_decoder(cfg, backbone.output_shape())
        mask_decoder = build_transformer_decoder(
            cfg, in_channels=cfg.MODEL.OMG.CONVS_DIM, text_dim=backbone.text_dim
        )
        names = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
        default_vocabulary = dataset_vocabulary(names[0]) if names else None
        test = cfg.MODEL.OMG.TEST
        return {
            "backbone": backbone,
            "pixel_decoder": pixel_decoder,
            "mask_decoder": mask_decoder,
            "criterion": SetCriterion(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
            "text_cache_dir": cfg.MODEL.OMG.CLIP.TEXT_CACHE_DIR,
            "text_batch_size": cfg.MODEL.OMG.CLIP.TEXT_BATCH_SIZE,
            "default_vocabulary": default_vocabulary,
            "train_datasets": list(cfg.DATASETS.TRAIN),
            "semantic_on": test.SEMANTIC_ON,
            "instance_on": test.INSTANCE_ON,
            "panoptic_on": test.PANOPTIC_ON,
            "object_mask_threshold": test.OBJECT_MASK_THRESHOLD,
            "overlap_threshold": test.OVERLAP_THRESHOLD,
            "test_topk_per_image": test.DETECTIONS_PER_IMAGE,
            "sem_seg_postprocess_before_inference": test.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE,
            "video_clip_length": test.VIDEO.CLIP_LENGTH,
            "num_vos_proposals": test.VIDEO.NUM_VOS_PROPOSALS,
            "video_tmp_dir": test.VIDEO.TMP_DIR,
            "video_progress": test.VIDEO.PROGRESS_BAR,
            "prompt_settings": PromptSettings.from_config(cfg),
            "ov_enabled": cfg.MODEL.OMG.OV.ENABLED,
            "ov_alpha": cfg.MODEL.OMG.OV.ALPHA,
            "ov_beta": cfg.MODEL.OMG.OV.BETA,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ---- vocabulary --------------------------------------------------------------------------
    def set_vocabulary(self, vocabulary, is_thing: Optional[Sequence[bool]] = None) -> None:
        """Switch the default label space used when an input names no dataset.

        ``vocabulary``: a :class:`Vocabulary`, a list of class strings (synonyms of one class
        comma-separated inside its string), a text (``"cat,dog,grass"``; see
        :meth:`Vocabulary.parse`) or a file path (:meth:`Vocabulary.from_file`); ``is_thing``
        for the last three (default: all things). The model is not rebuilt; text embeddings come
        from the cache (the text tower runs only for a vocabulary never seen before).
        """
        self.default_vocabulary = Vocabulary.coerce(vocabulary, is_thing)

    def text_embeddings(self, names: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings [K, S, D] of ``names`` on the model's device, from the model's one
        text cache (memory, then disk, then the text tower). Read-only."""
        backbone = self.backbone
        return self.text_cache.get(
            list(names),
            model_key=backbone.model_key,
            encode_text=backbone.encode_text,
            tokenizer=backbone.tokenizer,
            batch_size=self.text_batch_size,
            device=self.device,
        )

    def _vocabulary_of(self, inp: dict) -> Vocabulary:
        """The evaluation vocabulary of an input: its dataset's, else the default one."""
        name = inp.get("dataset_name")
        if name:
            return dataset_vocabulary(name)
        if self.default_vocabulary is None:
            raise ValueError(
                "No vocabulary: the input names no 'dataset_name' and the model has no default "
                "(set DATASETS.TEST or call model.set_vocabulary(Vocabulary([...])))"
            )
        return self.default_vocabulary

    def _eval_vocabulary(self, batched_inputs: List[dict]) -> Vocabulary:
        """The one vocabulary of an evaluation batch (outputs use its contiguous ids)."""
        vocabs = [self._vocabulary_of(inp) for inp in batched_inputs]
        if any(v != vocabs[0] for v in vocabs[1:]):
            names = sorted({str(inp.get("dataset_name")) for inp in batched_inputs})
            raise ValueError(
                f"An inference batch mixes datasets with different vocabularies ({names}); "
                "run one dataset per batch"
            )
        return vocabs[0]

    # ---- open vocabulary ---------------------------------------------------------------------
    def seen_classes(self, vocab: Vocabulary) -> torch.Tensor:
        """Bool [K] on the CPU: classes of ``vocab`` one of whose synonyms is in the training
        vocabulary (:meth:`joint_vocabulary`; no training dataset known: none is seen)."""
        members = tuple(self._joint_members)
        key = (vocab.names, members, self.default_vocabulary if "" in members else None)
        if key not in self._seen:
            training = self.joint_vocabulary()[0].names if members else ()
            self._seen[key] = open_vocab.seen_classes(vocab.names, open_vocab.synonym_set(training))
        return self._seen[key]

    def open_vocab_scores(self, features, mask_logits: torch.Tensor, mask_cls: torch.Tensor,
                          text: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
        """Learned class logits fused with mask-pooled frozen-CLIP scores (``open_vocab.py``):
        log-probabilities [B, Q, K + 1] from ``features`` (backbone outputs, frames clip after
        clip, or their res5), ``mask_logits`` [B, Q, T, h, w], ``mask_cls`` [B, Q, K + 1] and
        the text embeddings [K, S, D] of ``vocab``, with ``ov_alpha`` / ``ov_beta`` for the
        seen / unseen classes (:meth:`seen_classes`)."""
        return open_vocab.open_vocab_logits(
            self.backbone, features, mask_logits, mask_cls, text, self.seen_classes(vocab),
            alpha=self.ov_alpha, beta=self.ov_beta, logit_scale=self.mask_decoder.logit_scale,
        )

    def _maybe_open_vocab(self, outputs: dict, features, text: torch.Tensor,
                          vocab: Vocabulary) -> dict:
        """``outputs`` with fused ``pred_logits`` when ``ov_enabled``, else unchanged."""
        if not self.ov_enabled:
            return outputs
        fused = self.open_vocab_scores(features, outputs["pred_masks"], outputs["pred_logits"],
                                       text, vocab)
        return dict(outputs, pred_logits=fused)

    @staticmethod
    def merge_vocabularies(
        vocabs: Sequence[Optional[Vocabulary]],
    ) -> Tuple[Vocabulary, List[Optional[torch.Tensor]]]:
        """The joint vocabulary of several datasets and their id maps (see
        :func:`omgseg.modeling.vocabulary.merge_vocabularies`)."""
        return merge_vocabularies(vocabs)

    def joint_vocabulary(
        self, dataset_names: Sequence[Optional[str]] = (),
    ) -> Tuple[Vocabulary, Dict[str, Optional[torch.Tensor]]]:
        """The training label space: the merge of the training datasets' vocabularies, extended
        (for good) by any dataset in ``dataset_names`` that is not one of them yet.

        Returns ``(joint, id_maps)``; ``id_maps[name]`` sends the dataset's contiguous ids to joint
        ids (None: class-agnostic). ``""`` stands for ``default_vocabulary`` (inputs without a
        ``dataset_name``).
        """
        for name in dataset_names:
            if (name or "") not in self._joint_members:
                self._joint_members.append(name or "")
        members = tuple(self._joint_members)
        key = members + ((self.default_vocabulary,) if "" in members else ())
        if key not in self._joint:
            vocabs = []
            for name in members:
                if name:
                    vocabs.append(training_vocabulary(name))
                elif self.default_vocabulary is not None:
                    vocabs.append(self.default_vocabulary)
                else:
                    raise ValueError(
                        "A training input names no 'dataset_name' and the model has no default "
                        "vocabulary: stamp dataset_name on the records or call set_vocabulary()"
                    )
            if all(v is None for v in vocabs):
                # Every training dataset is class-agnostic (prompt-only training, e.g. COCO-SAM
                # alone): no sample has a class target, but the classifier still needs a label
                # space; the datasets' own class names serve (the official SAM-only config
                # classifies against COCO's).
                joint, _ = merge_vocabularies(
                    [dataset_vocabulary(n) if n else self.default_vocabulary for n in members]
                )
                maps = [None] * len(members)
            else:
                joint, maps = merge_vocabularies(vocabs)
            self._joint[key] = (joint, dict(zip(members, maps)))
        return self._joint[key]

    # ---- forward -----------------------------------------------------------------------------
    @staticmethod
    def _clip_of(inp: dict) -> torch.Tensor:
        """The frames of one input as [T, 3, H, W] (an image is a clip of one frame).

        Pixel values are 0..255 in ``INPUT.FORMAT`` channel order, CHW, as Detectron2's mappers
        give them: uint8, or floating point on the same 0..255 scale. A floating-point input
        whose values all lie in (0, 1] would be normalised as nearly black pixels, so it is
        rejected rather than silently mis-read.
        """
        if "video" in inp:
            key, want = "video", "[T, 3, H, W]"
        elif "image" in inp:
            key, want = "image", "[3, H, W]"
        else:
            raise KeyError(
                f"An input needs 'image' [3, H, W] or 'video' [T, 3, H, W]; got keys {sorted(inp)}"
            )
        clip = inp[key]
        if not isinstance(clip, torch.Tensor):
            raise TypeError(
                f"input['{key}'] must be a torch.Tensor {want}, got {type(clip).__name__}"
            )
        if clip.dim() != len(want.split(",")):
            raise ValueError(f"input['{key}'] must be {want}, got shape {tuple(clip.shape)}")
        if key == "image":
            clip = clip[None]
        if clip.shape[0] == 0:
            raise ValueError("input['video'] has 0 frames; a clip needs at least one frame")
        if clip.shape[1] != 3 or min(clip.shape[2:]) == 0:
            hint = " (channels last? permute to channels first)" if clip.shape[-1] == 3 else ""
            raise ValueError(
                f"input['{key}'] must be {want} with 3 channels and a non-empty image, got shape "
                f"{tuple(inp[key].shape)}{hint}"
            )
        if clip.dtype != torch.uint8 and not clip.is_floating_point():
            raise TypeError(
                f"input['{key}'] must be uint8 or floating point with pixel values in 0..255, "
                f"got {clip.dtype}"
            )
        if clip.is_floating_point():
            peak = float(clip.max())
            if 0.0 < peak <= 1.0:
                raise ValueError(
                    f"input['{key}'] is a floating-point tensor with values in [0, 1] (max "
                    f"{peak:.3g}); the model expects pixel values in 0..255 (uint8, or float "
                    "scaled by 255) like Detectron2's mappers give"
                )
        return clip

    def _frames(self, batched_inputs: List[dict]) -> Tuple[ImageList, int]:
        """Normalised, padded frames of all inputs (clip after clip) and the frames per clip T."""
        images, lengths = self._clip_frames(batched_inputs)
        if any(t != lengths[0] for t in lengths):
            raise ValueError(f"All clips of a batch need the same number of frames; got {lengths}")
        return images, lengths[0]

    def _clip_frames(self, batched_inputs: List[dict]) -> Tuple[ImageList, List[int]]:
        """Normalised frames of all inputs (clip after clip) padded to one size, and the number
        of frames of every clip (clips may differ: training groups them, ``forward_train``)."""
        if len(batched_inputs) == 0:
            raise ValueError("batched_inputs is empty: pass a list with one dict per image / clip")
        clips = [self._clip_of(inp) for inp in batched_inputs]
        frames = [
            (f.to(self.device).float() - self.pixel_mean) / self.pixel_std for c in clips for f in c
        ]
        images = ImageList.from_tensors(frames, self.size_divisibility)
        return images, [int(c.shape[0]) for c in clips]

    def encode(
        self, images: ImageList
    ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, List[torch.Tensor]]:
        """Backbone + pixel decoder: (backbone features, mask_features [N, C, h, w], 3 memory
        maps [N, C, h_l, w_l] at strides 32, 16, 8)."""
        features = self.backbone(images.tensor)
        mask_features, multi_scale = self.pixel_decoder.forward_features(features)
        return features, mask_features, multi_scale

    def forward(self, batched_inputs: List[dict]):
        if self.training:
            return self.forward_train(batched_inputs)
        if any("video_frames" in inp for inp in batched_inputs):
            return [self.video_inference(inp) for inp in batched_inputs]
        if any("prompts" in inp for inp in batched_inputs):
            return self.prompt_inference(batched_inputs)
        images, num_frames = self._frames(batched_inputs)
        vocab = self._eval_vocabulary(batched_inputs)
        text = self.text_embeddings(vocab.names)
        features, mask_features, multi_scale = self.encode(images)
        outputs = self.mask_decoder(multi_scale, mask_features, num_frames, text)
        outputs = self._maybe_open_vocab(outputs, features, text, vocab)
        return self.inference(batched_inputs, images, num_frames, outputs, vocab)

    # ---- prompts -----------------------------------------------------------------------------
    @staticmethod
    def _checked_prompts(inp: dict):
        """``inp["prompts"]`` after checking it fits the input image (the prompts must be in
        pixels of ``inp``'s image / first frame)."""
        prompts = inp["prompts"]
        clip = inp["video"] if "video" in inp else inp["image"][None]
        size = tuple(int(x) for x in clip.shape[-2:])
        if tuple(prompts.image_size) != size:
            raise ValueError(
                f"{inp.get('file_name', 'input')}: prompts are for an image of size "
                f"{tuple(prompts.image_size)} but the input image is {size}"
            )
        return prompts

    def prompt_memory(self, batched_inputs: List[dict], return_clip_features: bool = False):
        """Encode images once for prompting: ``(images, memory)``, the padded ``ImageList`` and
        the decoder's ``DecoderMemory`` (backbone + pixel decoder + memory tokens); with
        ``return_clip_features`` also the backbone's res5 [N, C5, h, w] (what the
        open-vocabulary fusion pools, :meth:`open_vocab_scores`) as a third element."""
        images, num_frames = self._frames(batched_inputs)
        features, mask_features, multi_scale = self.encode(images)
        memory = self.mask_decoder.prepare_memory(multi_scale, mask_features, num_frames)
        if return_clip_features:
            return images, memory, features["res5"]
        return images, memory

    def decode_prompt_sets(self, memory, prompts: Sequence, text: torch.Tensor) -> Dict:
        """Decode one prompt set per image of ``memory`` (eval: no jitter, no aux outputs)."""
        outputs, _ = decode_prompts(self.mask_decoder, memory, prompts, text,
                                    self.prompt_settings, training=False,
                                    return_aux_outputs=False)
        return outputs

    def prompt_inference(self, batched_inputs: List[dict]) -> List[dict]:
        """Inputs with ``"prompts"`` (pixels of their image; see ``omgseg.data.prompts``): one
        mask per prompt, ``{"prompt_instances": Instances}`` per input at its original size
        (``omgseg.modeling.prompts.prompt_results``), labels from the input's vocabulary."""
        missing = [i for i, inp in enumerate(batched_inputs) if "prompts" not in inp]
        if missing:
            raise ValueError(f"inputs {missing} have no 'prompts' while others do: prompt and "
                             "plain inputs go in separate batches")
        vocab = self._eval_vocabulary(batched_inputs)
        text = self.text_embeddings(vocab.names)
        with torch.no_grad():
            images, memory, res5 = self.prompt_memory(batched_inputs, return_clip_features=True)
            prompts = [self._checked_prompts(inp) for inp in batched_inputs]
            outputs = self.decode_prompt_sets(memory, prompts, text)
            outputs = self._maybe_open_vocab(outputs, res5, text, vocab)
        padded_size = tuple(images.tensor.shape[-2:])
        results = []
        for i, (inp, p) in enumerate(zip(batched_inputs, prompts)):
            image_size = tuple(images.image_sizes[i])
            n = len(p)
            results.append({"prompt_instances": prompt_results(
                outputs["pred_logits"][i, :n], outputs["pred_masks"][i, :n, 0],
                outputs["pred_objectness"][i, :n], padded_size, image_size,
                (int(inp.get("height", image_size[0])), int(inp.get("width", image_size[1]))),
            ).to_instances()})
        return results

    # ---- streaming video inference -----------------------------------------------------------
    def video_inference(self, inp: dict, tasks: Optional[Sequence[str]] = None) -> dict:
        """One whole video, clip by clip (``omgseg/modeling/video``; memory bounded by the clip
        length).

        Args:
            inp: ``{"video_frames": Sequence of T frames (HWC uint8 in INPUT.FORMAT, resized by
                the test augmentation, all one size), "height", "width" (original size; default
                ``video_frames.original_size``, else the frame size), "video_id", "length",
                "dataset_name" (vocabulary; its ``evaluator_type`` picks the clip length and the
                outputs)}``; for VOS also ``"first_frame_masks"`` bool [N_obj, H0, W0] and
                ``"object_ids"`` [N_obj].
            tasks: outputs to produce, a subset of ``("panoptic", "semantic", "instance",
                "vos")``; default: :func:`select_video_tasks` (dataset's evaluator + ``*_ON``).

        Returns:
            ``{"video_id", "frames": lazy [T] of {"panoptic_seg", "sem_seg"}, "video_instances":
            [{"score", "category_id", "segmentations": [RLE] * T}], "vos_masks": lazy [T] of
            uint8 [H0, W0]}`` for the requested tasks (see ``video/inference.py``).
        """
        if "video_frames" not in inp:
            raise KeyError(f"video_inference needs 'video_frames'; got keys {sorted(inp)}")
        frames = inp["video_frames"]
        video_id = inp.get("video_id", getattr(frames, "video_id", None))
        name = f"video {video_id!r}"
        num_frames = len(frames)
        if num_frames == 0:
            raise ValueError(f"{name} has no frames")
        if inp.get("length") is not None and int(inp["length"]) != num_frames:
            raise ValueError(f"{name}: 'length' is {inp['length']} but video_frames has "
                             f"{num_frames} frames")
        if inp.get("height") is not None and inp.get("width") is not None:
            output_size = (int(inp["height"]), int(inp["width"]))
        elif getattr(frames, "original_size", None) is not None:
            output_size = tuple(int(x) for x in frames.original_size)
        else:
            output_size = tuple(self._video_frame(frames, 0, name).shape[-2:])
        vocab = self._vocabulary_of(inp)
        text = self.text_embeddings(vocab.names)
        if inp.get("first_frame_prompts") is not None:
            with torch.no_grad():
                return self._prompt_video_inference(inp, frames, text, name, output_size, vocab)
        dataset = inp.get("dataset_name")
        evaluator_type = None
        if dataset:
            evaluator_type = MetadataCatalog.get(dataset).get("evaluator_type", None)
        if tasks is None:
            tasks = select_video_tasks(
                evaluator_type, panoptic_on=self.panoptic_on, semantic_on=self.semantic_on,
                instance_on=self.instance_on, has_first_frame="first_frame_masks" in inp,
            )
        clip_length = clip_length_for(num_frames, evaluator_type, self.video_clip_length)
        settings = PostprocessSettings(
            object_mask_threshold=self.object_mask_threshold,
            overlap_threshold=self.overlap_threshold,
            topk=self.test_topk_per_image,
            semantic_before_inference=self.sem_seg_postprocess_before_inference,
            num_vos_proposals=self.num_vos_proposals,
        )
        with torch.no_grad():
            return infer_video(
                bounds=split_video(num_frames, clip_length),
                decode_clip=lambda s, e: self._decode_video_clip(frames, s, e, text, name, vocab),
                num_frames=num_frames,
                tasks=tuple(tasks),
                is_thing=vocab.is_thing,
                output_size=output_size,
                settings=settings,
                instance_thing_mask=None if all(vocab.is_thing) else vocab.is_thing,
                first_frame_masks=inp.get("first_frame_masks"),
                object_ids=inp.get("object_ids"),
                video_id=video_id,
                device=self.device,
                tmp_dir=self.video_tmp_dir or None,
                progress=self.video_progress,
            )

    def _prompt_video_inference(self, inp: dict, frames, text: torch.Tensor, name: str,
                                output_size: Tuple[int, int],
                                vocab: Optional[Vocabulary] = None) -> dict:
        """Prompt-driven VOS (``omgseg/modeling/video/prompt_tracking.py``): the prompts of frame
        0 (``inp["first_frame_prompts"]``, pixels of the resized frames), then each object's
        previous mask as its prompt, frame by frame."""
        prompts = inp["first_frame_prompts"]
        first = self._video_frame(frames, 0, name)
        if tuple(prompts.image_size) != tuple(first.shape[-2:]):
            raise ValueError(f"{name}: first_frame_prompts are for frames of size "
                             f"{tuple(prompts.image_size)} but the (resized) frames are "
                             f"{tuple(first.shape[-2:])}")
        object_ids = inp.get("object_ids")
        if object_ids is None:
            object_ids = list(range(1, len(prompts) + 1))

        def decode(t: int, frame_prompts):
            frame = first if t == 0 else self._video_frame(frames, t, name)
            images, memory, res5 = self.prompt_memory([{"image": frame}],
                                                      return_clip_features=True)
            out = self.decode_prompt_sets(memory, [frame_prompts], text)
            if vocab is not None:
                out = self._maybe_open_vocab(out, res5, text, vocab)
            return (out["pred_masks"][0, :, 0], out["pred_logits"][0],
                    tuple(images.tensor.shape[-2:]), tuple(images.image_sizes[0]))

        return track_prompts(
            decode, prompts, len(frames), [int(i) for i in object_ids], output_size,
            video_id=inp.get("video_id"), tmp_dir=self.video_tmp_dir or None,
            progress=self.video_progress,
        )

    @staticmethod
    def _video_frame(frames, t: int, name: str) -> torch.Tensor:
        """Frame ``t`` of a ``video_frames`` sequence (HWC uint8, 3 channels) as uint8 [3, H, W]."""
        frame = frames[t]
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"{name}, frame {t}: video_frames must give numpy HWC uint8 arrays, "
                            f"got {type(frame).__name__}")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or 0 in frame.shape:
            raise ValueError(f"{name}, frame {t}: a frame must be a non-empty (H, W, 3) uint8 "
                             f"array, got {frame.dtype} {frame.shape}")
        return torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)))

    def _decode_video_clip(self, frames, start: int, end: int, text: torch.Tensor,
                           name: str, vocab: Optional[Vocabulary] = None) -> ClipPrediction:
        """Frames ``start..end-1`` through backbone, pixel decoder and the shared decoder
        (T = end - start); query features for association: the decoder's final output before
        its LayerNorm (:func:`final_query_features`). With ``ov_enabled`` (and ``vocab``) the
        class scores are fused with the CLIP scores of the clip's tubes here, before the
        association and the score averaging over clips (as the official)."""
        clip = [self._video_frame(frames, t, name) for t in range(start, end)]
        for t, frame in zip(range(start, end), clip):
            if frame.shape != clip[0].shape:
                raise ValueError(f"{name}, frame {t}: size {tuple(frame.shape[1:])} differs from "
                                 f"frame {start}'s {tuple(clip[0].shape[1:])}; all frames of a "
                                 "video must have one size")
        images, num_frames = self._frames([{"video": torch.stack(clip)}])
        backbone_features, mask_features, multi_scale = self.encode(images)
        with final_query_features(self.mask_decoder) as captured:
            out = self.mask_decoder(multi_scale, mask_features, num_frames, text)
        features = captured.get("features", out["query_embeds"])
        if vocab is not None:
            out = self._maybe_open_vocab(out, backbone_features, text, vocab)
        return ClipPrediction(
            mask_cls=out["pred_logits"][0],
            objectness=out["pred_objectness"][0],
            masks=out["pred_masks"][0],
            query_features=features[0],
            padded_size=tuple(images.tensor.shape[-2:]),
            image_size=tuple(images.image_sizes[0]),
        )

    def forward_train(self, batched_inputs: List[dict]) -> Dict[str, torch.Tensor]:
        """Weighted losses of a training batch, every sample classified against the joint
        vocabulary of the training datasets (:meth:`joint_vocabulary`).

        The frames of all samples go through the backbone and pixel decoder together; the
        decoder then runs once per group of samples that share a query kind and a clip length
        (:func:`training_groups`: image / video clips with the semantic queries, prompt samples
        with their location queries), and the criterion normalises every group's losses by the
        whole batch's denominators (one reduction over workers per step)."""
        images, lengths = self._clip_frames(batched_inputs)
        names = [inp.get("dataset_name") or "" for inp in batched_inputs]
        vocab, id_maps = self.joint_vocabulary(names)
        text = self.text_embeddings(vocab.names)
        _, mask_features, multi_scale = self.encode(images)
        starts = np.cumsum([0] + lengths[:-1]).tolist()
        decoded, sums = [], [0.0, 0.0]
        for is_prompt, num_frames, clips in training_groups(batched_inputs, lengths):
            inputs = [batched_inputs[c] for c in clips]
            if len(clips) == len(batched_inputs):
                group_masks, group_scales = mask_features, multi_scale
            else:
                rows = torch.tensor([starts[c] + f for c in clips for f in range(num_frames)],
                                    device=mask_features.device)
                group_masks = mask_features.index_select(0, rows)
                group_scales = [x.index_select(0, rows) for x in multi_scale]
            if is_prompt:
                memory = self.mask_decoder.prepare_memory(group_scales, group_masks, num_frames)
                prompts = [self._checked_prompts(inp) for inp in inputs]
                outputs, _ = decode_prompts(self.mask_decoder, memory, prompts, text,
                                            self.prompt_settings, training=True)
            else:
                outputs = self.mask_decoder(group_scales, group_masks, num_frames, text)
            targets = self.prepare_targets(
                inputs, images, num_frames, [id_maps[names[c]] for c in clips]
            )
            decoded.append((outputs, targets))
        if len(decoded) == 1:  # one group: the criterion computes the normalisers itself
            losses = self.criterion(*decoded[0])
        else:  # one reduction over workers either way (no collective-count mismatch in DDP)
            for outputs, targets in decoded:
                group = self.criterion.normaliser_sums(targets, outputs["pred_logits"].shape[1])
                sums = [a + b for a, b in zip(sums, group)]
            norms = self.criterion.reduce_normalisers(sums, self.device)
            losses = {}
            for outputs, targets in decoded:
                for k, v in self.criterion(outputs, targets, norms).items():
                    losses[k] = losses[k] + v if k in losses else v
        weights = self.criterion.weight_dict
        return {k: v * weights[k] for k, v in losses.items() if k in weights}

    def prepare_targets(
        self,
        batched_inputs: List[dict],
        images: ImageList,
        num_frames: int,
        id_maps: Sequence[Optional[torch.Tensor]],
    ) -> List[dict]:
        """Per clip: labels [M] in the joint vocabulary (-1: no class, e.g. a class-agnostic
        dataset, whose id map is None) and tube masks [M, T, H, W] (padded)."""
        h_pad, w_pad = images.tensor.shape[-2:]
        targets = []
        for inp, id_map in zip(batched_inputs, id_maps):
            frames: List[Instances] = inp["instances"]
            if len(frames) != num_frames:
                raise ValueError(
                    f"{inp.get('file_name')}: {len(frames)} target frames for {num_frames} images"
                )
            m = len(frames[0])
            masks = torch.zeros((m, num_frames, h_pad, w_pad), dtype=torch.bool, device=self.device)
            for t, inst in enumerate(frames):
                gt = inst.gt_masks
                gt = gt.tensor if hasattr(gt, "tensor") else gt
                masks[:, t, : gt.shape[-2], : gt.shape[-1]] = gt.to(self.device, torch.bool)
            labels = frames[0].gt_classes.to(torch.long)
            if id_map is None:
                labels = torch.full_like(labels, -1)
            else:
                if bool((labels >= len(id_map)).any()):
                    raise ValueError(
                        f"{inp.get('file_name')}: class id {int(labels.max())} outside the "
                        f"{len(id_map)} classes of dataset '{inp.get('dataset_name', '')}'"
                    )
                labels = torch.where(labels >= 0, id_map[labels.clamp(min=0)], labels)
            targets.append({"labels": labels.to(self.device), "masks": masks,
                            "match": inp.get("task") != "prompt"})
        return targets

    # ---- inference ---------------------------------------------------------------------------
    def inference(
        self,
        batched_inputs: List[dict],
        images: ImageList,
        num_frames: int,
        outputs: dict,
        vocab: Vocabulary,
    ) -> List[dict]:
        """Per input, the outputs of its frame (a clip: ``{"frames": [one per frame]}``)."""
        mask_cls = outputs["pred_logits"]  # [B, Q, K+1]
        mask_pred = outputs["pred_masks"]  # [B, Q, T, h, w], decoder resolution
        padded_size = tuple(images.tensor.shape[-2:])
        results = []
        for i, inp in enumerate(batched_inputs):
            frame_results = []
            for f in range(num_frames):
                image_size = images.image_sizes[i * num_frames + f]
                height = inp.get("height", image_size[0])
                width = inp.get("width", image_size[1])
                frame_results.append(
                    self.inference_single(
                        mask_cls[i], mask_pred[i, :, f], padded_size, image_size, height, width,
                        vocab,
                    )
                )
            results.append(frame_results[0] if "video" not in inp else {"frames": frame_results})
        return results

    def inference_single(
        self,
        mask_cls: torch.Tensor,
        mask_pred: torch.Tensor,
        padded_size: Tuple[int, int],
        image_size: Tuple[int, int],
        height: int,
        width: int,
        vocab: Vocabulary,
    ) -> dict:
        """One frame: ``mask_cls`` [Q, K+1] logits, ``mask_pred`` [Q, h, w] logits at decoder
        resolution for the padded input of ``padded_size`` holding an image of ``image_size``.

        Masks are upsampled to the padded size, cropped to the image and resized to
        (``height``, ``width``) (before the per-pixel inference with
        ``SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE``, else only the semantic map afterwards), and
        only those the requested outputs use (``frame_inference``).
        """

        def to_padded(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x[None], size=padded_size, mode="bilinear", align_corners=False)[0]

        def to_output(x: torch.Tensor) -> torch.Tensor:
            if (height, width) == tuple(image_size):  # the resize would be the identity
                return x[:, : image_size[0], : image_size[1]]
            return sem_seg_postprocess(x, image_size, height, width)

        before = self.sem_seg_postprocess_before_inference
        thing_mask = vocab.is_thing if (self.panoptic_on and not all(vocab.is_thing)) else None
        result = frame_inference(
            mask_cls,
            mask_pred,
            (lambda x: to_output(to_padded(x))) if before else to_padded,
            semantic=self.semantic_on,
            panoptic=self.panoptic_on,
            instance=self.instance_on,
            is_thing=vocab.is_thing,
            object_mask_threshold=self.object_mask_threshold,
            overlap_threshold=self.overlap_threshold,
            topk=self.test_topk_per_image,
            instance_thing_mask=thing_mask,
        )
        if "sem_seg" in result and not before:
            result["sem_seg"] = to_output(result["sem_seg"])
        return result
