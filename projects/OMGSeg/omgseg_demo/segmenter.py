"""One OMG-Seg model serving every demo task, and the drawing of each task's answer.

    cfg = setup_cfg("output/demo/demo_config.yaml",
                    ["MODEL.WEIGHTS", "output/demo/model_final.pth"])
    seg = Segmenter(cfg)
    seg.set_vocabulary(["circle", "square"], stuff=["grass"])
    picture = seg.draw_image(rgb, "panoptic")                      # HWC uint8 RGB
    picture, labels = seg.draw_prompts(rgb, points=[[40, 60]])     # encode-once prompts
    for picture in seg.draw_video("clip.mp4", "panoptic"): ...     # lazy, frame by frame

The model is built and its weights loaded once (``OMGSegPredictor``); ``PromptPredictor`` shares
it and caches the encoded image, so prompts on the same image run only the decoder. Images are
drawn with Detectron2's ``Visualizer``; videos with one colour per track
(``omgseg/utils/visualization.py``); prompt answers with the prompts on top
(``omgseg/utils/prompt_drawing.py``).
"""
import hashlib
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.config import get_cfg
from detectron2.data.catalog import Metadata
from detectron2.utils.visualizer import ColorMode, Visualizer
from pycocotools import mask as mask_util

from omgseg import add_omgseg_config
from omgseg.data.datasets.ov_vocabularies import split_synonyms
from omgseg.data.video_io import VideoFrames
from omgseg.inference import OMGSegPredictor, PromptPredictor, build_prompts
from omgseg.modeling.vocabulary import Vocabulary
from omgseg.utils.prompt_drawing import draw_prompt_answers, draw_prompts
from omgseg.utils.visualization import draw_index_map, draw_panoptic_tracks, track_color

from .inputs import DemoInputError

__all__ = ["IMAGE_TASKS", "TASKS", "VIDEO_TASKS", "Segmenter", "setup_cfg", "vocabulary_metadata"]

IMAGE_TASKS = ("panoptic", "instance", "semantic")
TASKS = IMAGE_TASKS + ("vos", "prompt")
VIDEO_TASKS = IMAGE_TASKS + ("vos",)


def setup_cfg(config_file: str, opts: Sequence[str] = (), confidence_threshold: float = 0.5):
    """The frozen model config: ``config_file`` + ``opts``. When ``MODEL.WEIGHTS`` is empty and
    a ``model_final.pth`` lies beside the config file (a training output folder, e.g.
    ``output/demo/``), that checkpoint is used."""
    if not os.path.isfile(config_file):
        raise DemoInputError(f"--config-file: file not found: {config_file!r}")
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(config_file)
    if len(opts) % 2:
        raise DemoInputError(f"--opts: KEY VALUE pairs expected, got {len(opts)} items")
    cfg.merge_from_list(list(opts))
    if not cfg.MODEL.WEIGHTS:
        beside = os.path.join(os.path.dirname(os.path.abspath(config_file)), "model_final.pth")
        if os.path.isfile(beside):
            cfg.MODEL.WEIGHTS = beside
    if cfg.MODEL.WEIGHTS and not os.path.isfile(cfg.MODEL.WEIGHTS) and "://" not in str(
            cfg.MODEL.WEIGHTS):
        raise DemoInputError(f"MODEL.WEIGHTS: file not found: {cfg.MODEL.WEIGHTS!r}")
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.OMG.TEST.VIDEO.PROGRESS_BAR = False
    cfg.freeze()
    return cfg


def display_name(name: str) -> str:
    """The first synonym of a class string (``"person,child"`` -> ``"person"``)."""
    synonyms = split_synonyms(name)
    return synonyms[0] if synonyms else name.strip()


def vocabulary_metadata(vocabulary: Vocabulary) -> Metadata:
    """Detectron2 metadata for the ``Visualizer``: ``thing_classes`` = ``stuff_classes`` = the
    display names in contiguous-id order (this project's convention), colours by class id."""
    names = [display_name(n) for n in vocabulary.names]
    colors = [tuple(int(c) for c in track_color(i + 1) * 255) for i in range(len(names))]
    key = hashlib.sha1("|".join(vocabulary.names).encode()).hexdigest()[:8]
    return Metadata(name=f"omgseg_demo_{key}", thing_classes=names, stuff_classes=names,
                    thing_colors=colors, stuff_colors=colors)


def _rle_to_mask(rle) -> np.ndarray:
    if isinstance(rle, dict) and isinstance(rle.get("counts"), str):
        rle = dict(rle, counts=rle["counts"].encode())
    return mask_util.decode(rle).astype(bool)


def _prompt_kwargs(points, boxes, regions) -> dict:
    """Prompt keyword arguments of the predictors, None for the kinds not given (None or
    empty): points [N, 2], boxes [M, 4], regions bool [S, H, W] (strokes or masks)."""
    given = {"points": points, "boxes": boxes, "masks": regions}
    return {k: (None if v is None or len(v) == 0 else v) for k, v in given.items()}


class Segmenter:
    """The demos' model (see the module docstring).

    Args:
        cfg: a config from :func:`setup_cfg`.
        confidence_threshold: instances (image and video) below this score are not drawn.
    """

    def __init__(self, cfg, confidence_threshold: float = 0.5):
        self.cfg = cfg
        self.confidence_threshold = float(confidence_threshold)
        self.predictor = OMGSegPredictor(cfg, input_format="RGB")
        self.model = self.predictor.model
        self.prompt_predictor = PromptPredictor(cfg, input_format="RGB", model=self.model)
        self._image_key: Optional[str] = None
        if self.model.default_vocabulary is not None:
            self.vocabulary = self.model.default_vocabulary
        else:
            self.vocabulary = None
        self.metadata = vocabulary_metadata(self.vocabulary) if self.vocabulary else None

    # ---- vocabulary ------------------------------------------------------------------------
    def set_vocabulary(self, things: Sequence[str], stuff: Sequence[str] = ()) -> None:
        """Classify against ``things`` then ``stuff`` (comma-separated synonyms per string)."""
        names = list(things) + list(stuff)
        if not names or any(not str(n).strip() for n in names):
            raise DemoInputError("the vocabulary is empty: give at least one class name")
        vocabulary = Vocabulary(names, [True] * len(things) + [False] * len(stuff))
        self.model.set_vocabulary(vocabulary)
        self.vocabulary = vocabulary
        self.metadata = vocabulary_metadata(vocabulary)

    def _require_vocabulary(self) -> None:
        if self.vocabulary is None:
            raise DemoInputError("no vocabulary: pass --vocabulary (the config names no "
                                 "DATASETS.TEST to take class names from)")

    # ---- images ----------------------------------------------------------------------------
    def image_outputs(self, rgb: np.ndarray) -> dict:
        """The model's outputs for one HWC uint8 RGB image (``panoptic_seg``, ``instances``,
        ``sem_seg`` at the image size)."""
        self._require_vocabulary()
        return self.predictor(rgb)

    def draw_image(self, rgb: np.ndarray, task: str, outputs: Optional[dict] = None
                   ) -> np.ndarray:
        """Panoptic / instance / semantic answer drawn on ``rgb`` (HWC uint8 RGB, same size)."""
        if task not in IMAGE_TASKS:
            raise DemoInputError(f"--task {task!r} is not an image task ({IMAGE_TASKS})")
        out = outputs if outputs is not None else self.image_outputs(rgb)
        vis = Visualizer(rgb, self.metadata, instance_mode=ColorMode.IMAGE)
        if task == "panoptic":
            ids, segments_info = out["panoptic_seg"]
            return vis.draw_panoptic_seg(ids.cpu(), segments_info).get_image()
        if task == "instance":
            inst = out["instances"].to("cpu")
            inst = inst[inst.scores >= self.confidence_threshold]
            return vis.draw_instance_predictions(inst).get_image()
        return vis.draw_sem_seg(out["sem_seg"].argmax(0).cpu()).get_image()

    def image_labels(self, outputs: dict, task: str) -> List[str]:
        """Class names found by an image task (panoptic segments, kept instances, classes of
        the semantic map), in output order."""
        names = self.metadata.thing_classes
        if task == "panoptic":
            return [names[s["category_id"]] for s in outputs["panoptic_seg"][1]]
        if task == "instance":
            inst = outputs["instances"]
            keep = inst.scores >= self.confidence_threshold
            return [names[int(c)] for c in inst.pred_classes[keep]]
        return [names[int(c)] for c in torch.unique(outputs["sem_seg"].argmax(0))]

    # ---- prompts ---------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray) -> None:
        """Encode ``rgb`` for prompting unless it is the image already encoded (same bytes)."""
        key = hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest() + str(rgb.shape)
        if key != self._image_key or not self.prompt_predictor.is_image_set:
            self.prompt_predictor.set_image(rgb)
            self._image_key = key

    def draw_prompts(self, rgb: np.ndarray, points=None, boxes=None, regions=None
                     ) -> Tuple[np.ndarray, List[str]]:
        """One mask per prompt (points [N, 2], boxes [M, 4], regions bool [S, H, W]: strokes or
        masks), drawn with the prompts; returns ``(picture, labels)``."""
        self._require_vocabulary()
        self.set_image(rgb)
        result = self.prompt_predictor.predict(**_prompt_kwargs(points, boxes, regions))
        labels = [display_name(n) for n in result.labels]
        picture = draw_prompt_answers(rgb, result.masks, labels)
        return draw_prompts(picture, points, boxes, regions), labels

    def draw_referring(self, reference_rgb: np.ndarray, rgb: np.ndarray, points=None,
                       boxes=None, regions=None) -> Tuple[np.ndarray, List[str]]:
        """Regions of ``rgb`` of the kind marked on ``reference_rgb`` (SEEM-style referring)."""
        self._require_vocabulary()
        self.set_image(reference_rgb)
        reference = self.prompt_predictor.encode_region(**_prompt_kwargs(points, boxes, regions))
        self.set_image(rgb)
        found = self.prompt_predictor.find_similar(reference)
        labels = [f"{display_name(n)} ({s:.2f})" for n, s in zip(found.labels, found.similarity)]
        if len(found.masks) == 0:
            return rgb.copy(), []
        return draw_prompt_answers(rgb, found.masks, labels), labels

    # ---- videos ----------------------------------------------------------------------------
    def open_video(self, source) -> VideoFrames:
        """A video file or a folder of frames as lazy frames in the model's format (errors for a
        missing folder, a file OpenCV cannot open or decode)."""
        frames = VideoFrames(source, [self.predictor.aug], self.cfg.INPUT.FORMAT)
        frames.read_original(0)  # fail now, not after the model ran, on an undecodable file
        return frames

    def video_outputs(self, frames: VideoFrames, task: str, first_frame_masks=None,
                      points=None, boxes=None, regions=None) -> dict:
        """``OMGSeg.video_inference`` of the whole video for ``task``; VOS follows
        ``first_frame_masks`` (bool [N, H, W]) or the first-frame prompts (points / boxes /
        regions, original pixels: prompt-driven VOS)."""
        self._require_vocabulary()
        if task not in VIDEO_TASKS:
            raise DemoInputError(f"--task {task!r} is not a video task ({VIDEO_TASKS}); prompts "
                                 "on a video are --task vos with prompts on the first frame")
        inp = {"video_frames": frames, "height": frames.original_size[0],
               "width": frames.original_size[1], "video_id": frames.video_id}
        if task == "vos":
            has_prompts = any(x is not None and len(x) for x in (points, boxes, regions))
            if first_frame_masks is not None:
                masks = torch.as_tensor(np.asarray(first_frame_masks, dtype=bool))
                inp["first_frame_masks"] = masks
                inp["object_ids"] = list(range(1, len(masks) + 1))
            elif has_prompts:
                prompts = build_prompts(
                    frames.transform, frames.original_size, frames.size,
                    max_prompts=self.model.prompt_settings.max_prompts,
                    **_prompt_kwargs(points, boxes, regions),
                )
                inp["first_frame_prompts"] = prompts
                inp["object_ids"] = list(range(1, len(prompts) + 1))
            else:
                raise DemoInputError("--task vos needs the objects of the first frame: --mask "
                                     "(an image, one object per value) or --points / --boxes / "
                                     "--scribble on the first frame")
        with torch.no_grad():
            return self.model.video_inference(inp, tasks=(task,))

    def draw_video_frame(self, rgb: np.ndarray, out: dict, t: int, task: str) -> np.ndarray:
        """Frame ``t`` of a video answer drawn on ``rgb`` (the original frame, RGB); thing and
        instance colours follow the track."""
        if task == "panoptic":
            ids, segments_info = out["frames"][t]["panoptic_seg"]
            ids = ids.cpu().numpy() if hasattr(ids, "cpu") else np.asarray(ids)
            return draw_panoptic_tracks(rgb, ids, segments_info, self.metadata)
        if task == "semantic":
            labels = out["frames"][t]["sem_seg"]
            labels = labels.cpu() if hasattr(labels, "cpu") else torch.as_tensor(labels)
            vis = Visualizer(rgb, self.metadata, instance_mode=ColorMode.IMAGE)
            return vis.draw_sem_seg(labels).get_image()
        if task == "instance":
            index = np.zeros(rgb.shape[:2], np.uint8)
            labels = {}
            kept = [v for v in out["video_instances"]
                    if v["score"] >= self.confidence_threshold][:254]
            for k, inst in sorted(enumerate(kept, 1), key=lambda kv: -kv[1]["score"])[::-1]:
                rle = inst["segmentations"][t]
                if rle is None:
                    continue
                index[_rle_to_mask(rle)] = k
                labels[k] = f"{self.metadata.thing_classes[inst['category_id']]} #{k}"
            return draw_index_map(rgb, index, labels=labels)
        return draw_index_map(rgb, np.asarray(out["vos_masks"][t]))

    def draw_video(self, frames: VideoFrames, task: str, **vos_inputs) -> Iterator[np.ndarray]:
        """The drawn frames of ``task`` on the video, one at a time (lazy)."""
        out = self.video_outputs(frames, task, **vos_inputs)
        rgb_frames = VideoFrames(frames.video_file or frames.file_names, [], "RGB",
                                 video_id=frames.video_id)
        for t in range(len(frames)):
            picture = self.draw_video_frame(rgb_frames.read_original(t), out, t, task)
            if t == 0 and task == "vos" and "first_frame_masks" not in vos_inputs:
                picture = draw_prompts(picture, vos_inputs.get("points"), vos_inputs.get("boxes"),
                                       vos_inputs.get("regions"))
            yield picture
