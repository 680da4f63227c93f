"""``OMGSeg``: one model for image / video / prompt segmentation (Detectron2 meta-architecture).

Shape shorthand: B clips, T frames per clip, N = B*T frames, Q queries, K classes of the active
vocabulary, S synonyms, D CLIP text dim, H x W padded input, h x w = H/4 x W/4.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList, Instances

from .build import build_pixel_decoder, build_transformer_decoder
from .clip.text_embeddings import class_names_from_metadata, get_text_embeddings
from .criterion import SetCriterion
from .postprocessing import instance_inference, panoptic_inference, semantic_inference

__all__ = ["OMGSeg", "Vocabulary"]


class Vocabulary:
    """Class names of one label space plus which of them are things.

    ``names[i]`` is contiguous class id ``i``; a name may hold comma-separated synonyms.
    """

    def __init__(self, names: Sequence[str], is_thing: Optional[Sequence[bool]] = None):
        if len(names) == 0:
            raise ValueError("A vocabulary needs at least one class name")
        self.names = tuple(str(n) for n in names)
        self.is_thing = tuple(bool(x) for x in (is_thing if is_thing is not None else [True] * len(names)))
        if len(self.is_thing) != len(self.names):
            raise ValueError(
                f"is_thing has {len(self.is_thing)} entries for {len(self.names)} class names"
            )

    @classmethod
    def from_metadata(cls, metadata) -> "Vocabulary":
        names = class_names_from_metadata(metadata)
        thing_ids = set(getattr(metadata, "thing_dataset_id_to_contiguous_id", {}).values())
        if metadata.get("stuff_classes") and thing_ids:
            is_thing = [i in thing_ids for i in range(len(names))]
        elif metadata.get("stuff_classes") and not metadata.get("thing_classes"):
            is_thing = [False] * len(names)
        else:
            is_thing = [True] * len(names)
        return cls(names, is_thing)

    def __len__(self) -> int:
        return len(self.names)


@META_ARCH_REGISTRY.register()
class OMGSeg(nn.Module):
    """Frozen CLIP backbone -> deformable pixel decoder -> shared mask decoder -> CLIP classifier.

    Training input: the clip dicts of ``PseudoVideoLSJDatasetMapper`` (``"video"`` [T, 3, H, W],
    ``"instances"`` per frame). Inference input: Detectron2's ``{"image": [3, H, W], ...}`` or a
    clip ``{"video": [T, 3, H, W], ...}``. Per image the output holds ``sem_seg`` [K, H, W],
    ``panoptic_seg`` (ids [H, W], segments_info) and ``instances``, per the ``*_ON`` switches; a
    clip gives ``{"frames": [that dict per frame]}``.
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
        semantic_on: bool,
        instance_on: bool,
        panoptic_on: bool,
        object_mask_threshold: float,
        overlap_threshold: float,
        test_topk_per_image: int,
        sem_seg_postprocess_before_inference: bool,
    ):
        super().__init__()
        self.backbone = backbone
        self.pixel_decoder = pixel_decoder
        self.mask_decoder = mask_decoder
        self.criterion = criterion
        self.size_divisibility = max(size_divisibility, backbone.size_divisibility)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.text_cache_dir = text_cache_dir
        self.text_batch_size = text_batch_size
        self.default_vocabulary = default_vocabulary
        self.semantic_on = semantic_on
        self.instance_on = instance_on
        self.panoptic_on = panoptic_on
        self.object_mask_threshold = object_mask_threshold
        self.overlap_threshold = overlap_threshold
        self.test_topk_per_image = test_topk_per_image
        self.sem_seg_postprocess_before_inference = sem_seg_postprocess_before_inference
        self._text_memo: Dict[Tuple[str, ...], torch.Tensor] = {}

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        pixel_decoder = build_pixel_decoder(cfg, backbone.output_shape())
        mask_decoder = build_transformer_decoder(
            cfg, in_channels=cfg.MODEL.OMG.CONVS_DIM, text_dim=backbone.text_dim
        )
        names = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
        default_vocabulary = Vocabulary.from_metadata(MetadataCatalog.get(names[0])) if names else None
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
            "semantic_on": test.SEMANTIC_ON,
            "instance_on": test.INSTANCE_ON,
            "panoptic_on": test.PANOPTIC_ON,
            "object_mask_threshold": test.OBJECT_MASK_THRESHOLD,
            "overlap_threshold": test.OVERLAP_THRESHOLD,
            "test_topk_per_image": test.DETECTIONS_PER_IMAGE,
            "sem_seg_postprocess_before_inference": test.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ---- vocabulary --------------------------------------------------------------------------
    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Switch the default label space used when an input names no dataset."""
        self.default_vocabulary = vocabulary

    def text_embeddings(self, names: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings [K, S, D] of ``names`` (memoised; cached on disk)."""
        key = tuple(names)
        if key not in self._text_memo:
            emb = get_text_embeddings(
                self.backbone.encode_text,
                self.backbone.tokenizer,
                list(names),
                cache_dir=self.text_cache_dir,
                model_key=self.backbone.model_key,
                batch_size=self.text_batch_size,
                device=self.device,
            )
            self._text_memo[key] = emb
        return self._text_memo[key].to(self.device)

    def _vocabulary_of(self, inp: dict) -> Vocabulary:
        name = inp.get("dataset_name")
        if name:
            if name not in MetadataCatalog.list():
                raise KeyError(
                    f"Unknown dataset_name '{name}': register it (DatasetCatalog / MetadataCatalog) "
                    "so its class names can be read from its metadata"
                )
            return Vocabulary.from_metadata(MetadataCatalog.get(name))
        if self.default_vocabulary is None:
            raise ValueError(
                "No vocabulary: the input names no 'dataset_name' and the model has no default "
                "(set DATASETS.TEST or call model.set_vocabulary(Vocabulary([...])))"
            )
        return self.default_vocabulary

    @staticmethod
    def merge_vocabularies(vocabs: Sequence[Vocabulary]) -> Tuple[Vocabulary, List[torch.Tensor]]:
        """Union of label spaces by class-name string; returns it and each input's id map."""
        names: List[str] = []
        is_thing: List[bool] = []
        index: Dict[str, int] = {}
        maps = []
        for vocab in vocabs:
            ids = []
            for name, thing in zip(vocab.names, vocab.is_thing):
                if name not in index:
                    index[name] = len(names)
                    names.append(name)
                    is_thing.append(thing)
                ids.append(index[name])
            maps.append(torch.tensor(ids, dtype=torch.long))
        return Vocabulary(names, is_thing), maps

    # ---- forward -----------------------------------------------------------------------------
    def _frames(self, batched_inputs: List[dict]) -> Tuple[ImageList, int]:
        clips = []
        for inp in batched_inputs:
            if "video" in inp:
                clips.append(inp["video"])
            elif "image" in inp:
                clips.append(inp["image"][None])
            else:
                raise KeyError(f"An input needs 'image' [3, H, W] or 'video' [T, 3, H, W]; got {sorted(inp)}")
        num_frames = clips[0].shape[0]
        if any(c.shape[0] != num_frames for c in clips):
            raise ValueError(f"All clips of a batch need the same number of frames; got {[c.shape[0] for c in clips]}")
        frames = [(f.to(self.device).float() - self.pixel_mean) / self.pixel_std for c in clips for f in c]
        return ImageList.from_tensors(frames, self.size_divisibility), num_frames

    def encode(self, images: ImageList) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, List[torch.Tensor]]:
        """Backbone + pixel decoder: (backbone features, mask_features [N, C, h, w], 3 memory maps)."""
        features = self.backbone(images.tensor)
        mask_features, multi_scale = self.pixel_decoder.forward_features(features)
        return features, mask_features, multi_scale

    def forward(self, batched_inputs: List[dict]):
        images, num_frames = self._frames(batched_inputs)
        vocabs = [self._vocabulary_of(inp) for inp in batched_inputs]
        vocab, id_maps = self.merge_vocabularies(vocabs)
        text = self.text_embeddings(vocab.names)
        _, mask_features, multi_scale = self.encode(images)
        outputs = self.mask_decoder(multi_scale, mask_features, num_frames, text)

        if self.training:
            targets = self.prepare_targets(batched_inputs, images, num_frames, id_maps)
            losses = self.criterion(outputs, targets)
            weights = self.criterion.weight_dict
            for k in list(losses):
                if k in weights:
                    losses[k] = losses[k] * weights[k]
                else:
                    losses.pop(k)
            return losses
        return self.inference(batched_inputs, images, num_frames, outputs, vocab)

    def prepare_targets(
        self, batched_inputs: List[dict], images: ImageList, num_frames: int, id_maps: List[torch.Tensor]
    ) -> List[dict]:
        """Per clip: labels [M] in the merged vocabulary and tube masks [M, T, H, W] (padded)."""
        h_pad, w_pad = images.tensor.shape[-2:]
        targets = []
        for inp, id_map in zip(batched_inputs, id_maps):
            frames: List[Instances] = inp["instances"]
            if len(frames) != num_frames:
                raise ValueError(f"{inp.get('file_name')}: {len(frames)} target frames for {num_frames} images")
            m = len(frames[0])
            masks = torch.zeros((m, num_frames, h_pad, w_pad), dtype=torch.bool, device=self.device)
            for t, inst in enumerate(frames):
                gt = inst.gt_masks
                gt = gt.tensor if hasattr(gt, "tensor") else gt
                masks[:, t, : gt.shape[-2], : gt.shape[-1]] = gt.to(self.device, torch.bool)
            labels = frames[0].gt_classes.to(torch.long)
            valid = labels >= 0
            labels = torch.where(valid, id_map[labels.clamp(min=0)], labels).to(self.device)
            targets.append({"labels": labels, "masks": masks, "match": inp.get("task") != "prompt"})
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
        mask_cls = outputs["pred_logits"]  # [B, Q, K+1]
        mask_pred = outputs["pred_masks"]  # [B, Q, T, h, w]
        b, q, t, h, w = mask_pred.shape
        mask_pred = F.interpolate(
            mask_pred.flatten(1, 2), size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        ).view(b, q, t, *images.tensor.shape[-2:])
        results = []
        for i, inp in enumerate(batched_inputs):
            frame_results = []
            for f in range(t):
                image_size = images.image_sizes[i * t + f]
                height = inp.get("height", image_size[0])
                width = inp.get("width", image_size[1])
                frame_results.append(
                    self.inference_single(mask_cls[i], mask_pred[i, :, f], image_size, height, width, vocab)
                )
            results.append(frame_results[0] if "video" not in inp else {"frames": frame_results})
        return results

    def inference_single(
        self,
        mask_cls: torch.Tensor,
        mask_pred: torch.Tensor,
        image_size: Tuple[int, int],
        height: int,
        width: int,
        vocab: Vocabulary,
    ) -> dict:
        """One frame: mask_cls [Q, K+1] logits, mask_pred [Q, H_pad, W_pad] logits."""
        result = {}
        if self.sem_seg_postprocess_before_inference:
            mask_pred = sem_seg_postprocess(mask_pred, image_size, height, width)
        if self.semantic_on:
            sem = semantic_inference(mask_cls, mask_pred)
            if not self.sem_seg_postprocess_before_inference:
                sem = sem_seg_postprocess(sem, image_size, height, width)
            result["sem_seg"] = sem
        if self.panoptic_on:
            result["panoptic_seg"] = panoptic_inference(
                mask_cls,
                mask_pred,
                is_thing=vocab.is_thing,
                object_mask_threshold=self.object_mask_threshold,
                overlap_threshold=self.overlap_threshold,
            )
        if self.instance_on:
            thing_mask = vocab.is_thing if (self.panoptic_on and not all(vocab.is_thing)) else None
            result["instances"] = instance_inference(
                mask_cls, mask_pred, topk=self.test_topk_per_image, thing_mask=thing_mask
            )
        return result
