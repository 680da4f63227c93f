"""Top-level generation of OMG-Shapes: parameters, the item loop, meta.json, and the output
folder's safety (:class:`omgseg.utils.file_io.ManagedOutput`).

The dataset is written into a temporary sibling folder and moved into place only when complete:
an interrupted (even killed) run never leaves a half-written dataset at ``root`` and never
deletes a previous one. ``root`` must be absent, empty or a dataset this generator wrote (its
``.omgseg-manifest.json`` lists every file); files it did not write are never touched.
"""
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from tqdm import tqdm

from ..utils.file_io import ManagedOutput
from .categories import LABEL_DIVISOR, OMG_SHAPES_CATEGORIES
from .image_scenes import sample_image_scene
from .io_utils import write_jpeg, write_json
from .paths import (SPLITS, OmgShapesPaths, default_omg_shapes_root, frame_stem, image_stem,
                    video_name)
from .rng import item_rng
from .video_clips import is_entering_or_leaving, sample_video_clip
from .write_coco_instances import CocoInstancesWriter
from .write_coco_panoptic import CocoPanopticWriter
from .write_davis import DavisWriter
from .write_semseg import SemSegWriter
from .write_vipseg import VIPSegWriter
from .write_ytvis import YTVISWriter

__all__ = ["GENERATOR_VERSION", "OmgShapesConfig", "generate_omg_shapes", "prepare_omg_shapes",
           "read_meta"]

# Bump whenever the output for given parameters changes (existing datasets are then regenerated).
GENERATOR_VERSION = "1.0.0"
# The tool named in the output's manifest and in error messages.
TOOL_NAME = "datasets/prepare_synthetic.py"

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class OmgShapesConfig:
    """All parameters that determine the generated files (sizes are (H, W))."""

    seed: int = 0
    num_train_images: int = 400
    num_val_images: int = 60
    num_train_videos: int = 16
    num_val_videos: int = 6
    image_size: Tuple[int, int] = (256, 256)
    video_size: Tuple[int, int] = (192, 256)
    min_frames: int = 8
    max_frames: int = 20
    # fixed content parameters (recorded so that a change triggers regeneration)
    min_instances: int = 2
    max_instances: int = 8
    image_min_area: int = 40
    video_min_area: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        object.__setattr__(self, "video_size", tuple(int(v) for v in self.video_size))
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        counts = (self.num_train_images, self.num_val_images, self.num_train_videos,
                  self.num_val_videos)
        if min(counts) < 0:
            raise ValueError("item counts must be >= 0")
        if len(self.image_size) != 2 or len(self.video_size) != 2:
            raise ValueError("sizes are (H, W)")
        if min(self.image_size + self.video_size) < 32:
            raise ValueError("image and video sides must be >= 32 pixels")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")

    def num_images(self, split: str) -> int:
        return self.num_train_images if split == "train" else self.num_val_images

    def num_videos(self, split: str) -> int:
        return self.num_train_videos if split == "train" else self.num_val_videos

    def to_json(self) -> Dict[str, Any]:
        """JSON-compatible dict (tuples as lists), as stored in ``meta.json``."""
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        d["video_size"] = list(self.video_size)
        return d


def read_meta(root: PathLike) -> Optional[Dict[str, Any]]:
    """The parsed ``meta.json`` of a generated dataset, or None when absent or unreadable."""
    path = OmgShapesPaths(root).meta
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _empty_counts() -> Dict[str, int]:
    keys = ("images", "segments", "instances", "videos", "frames", "tracks",
            "entering_or_leaving_tracks", "video_segments", "davis_objects")
    return {k: 0 for k in keys}


def _generate_into(paths: OmgShapesPaths, cfg: OmgShapesConfig, progress: bool
                   ) -> Dict[str, Dict[str, int]]:
    summary = {split: _empty_counts() for split in SPLITS}
    total = sum(cfg.num_images(s) + cfg.num_videos(s) for s in SPLITS)
    bar = tqdm(total=total, desc="OMG-Shapes", unit="item", disable=not progress, leave=True)
    ih, iw = cfg.image_size
    vh, vw = cfg.video_size
    try:
        for split in SPLITS:
            counts = summary[split]
            panoptic = CocoPanopticWriter(paths, split)
            semseg = SemSegWriter(paths, split)
            instances = CocoInstancesWriter(paths, split)
            bar.set_postfix_str(f"{split} images")
            for i in range(cfg.num_images(split)):
                frame = sample_image_scene(item_rng(cfg.seed, split, "image", i), ih, iw,
                                           cfg.min_instances, cfg.max_instances,
                                           cfg.image_min_area)
                stem = image_stem(i)
                write_jpeg(paths.image_dir(split) / f"{stem}.jpg", frame.image)
                counts["segments"] += len(panoptic.add(i, stem, frame))
                semseg.add(stem, frame)
                counts["instances"] += instances.add(i, stem, frame)
                counts["images"] += 1
                bar.update(1)
            panoptic.finalize()
            instances.finalize()

        davis = DavisWriter(paths)
        global_index = 0
        for split in SPLITS:
            counts = summary[split]
            ytvis = YTVISWriter(paths, split)
            vps = VIPSegWriter(paths, split)
            bar.set_postfix_str(f"{split} videos")
            for i in range(cfg.num_videos(split)):
                clip = sample_video_clip(item_rng(cfg.seed, split, "video", i), vh, vw,
                                         cfg.min_frames, cfg.max_frames, cfg.video_min_area)
                name = video_name(global_index)
                global_index += 1
                frame_files = []
                for t, frame in enumerate(clip.frames):
                    path = paths.video_frames_dir(split) / name / f"{frame_stem(t)}.jpg"
                    write_jpeg(path, frame.image)
                    frame_files.append(path)
                ytvis.add_video(i + 1, name, clip)
                counts["video_segments"] += vps.add_video(name, clip)
                counts["davis_objects"] += davis.add_video(split, name, clip, frame_files)
                counts["videos"] += 1
                counts["frames"] += len(clip.frames)
                counts["tracks"] += len(clip.tracks)
                counts["entering_or_leaving_tracks"] += sum(
                    1 for tr in clip.tracks if is_entering_or_leaving(tr.visible))
                bar.update(1)
            ytvis.finalize()
            vps.finalize()
        davis.finalize()
    finally:
        bar.close()

    write_json(paths.meta, {
        "generator": "omg_shapes",
        "version": GENERATOR_VERSION,
        "parameters": cfg.to_json(),
        "counts": summary,
        "categories": [dict(c) for c in OMG_SHAPES_CATEGORIES],
        "label_divisor": LABEL_DIVISOR,
    })
    return summary


def _managed(root: PathLike, cfg: OmgShapesConfig, force: bool) -> ManagedOutput:
    return ManagedOutput(root, script=TOOL_NAME, version=GENERATOR_VERSION,
                         parameters=cfg.to_json(), force=force)


def generate_omg_shapes(
    root: PathLike,
    *,
    seed: int = 0,
    num_train_images: int = 400,
    num_val_images: int = 60,
    num_train_videos: int = 16,
    num_val_videos: int = 6,
    image_size: Tuple[int, int] = (256, 256),
    video_size: Tuple[int, int] = (192, 256),
    min_frames: int = 8,
    max_frames: int = 20,
    force: bool = False,
    progress: bool = True,
) -> Dict[str, Dict[str, int]]:
    """Generate OMG-Shapes at ``root``, replacing a dataset this generator wrote there.

    ``root`` must be absent, empty, or an earlier output of this generator; otherwise
    :class:`~omgseg.utils.file_io.OutputRefusedError` is raised and nothing is written
    (``force=True`` accepts a folder without manifest: only the dataset's own paths are
    replaced there). Returns the per-split counts: images, segments and instances (images);
    videos, frames, tracks, entering_or_leaving_tracks, video_segments (frame-level) and
    davis_objects (videos). The same arguments give byte-identical files.
    """
    cfg = OmgShapesConfig(seed=seed, num_train_images=num_train_images,
                          num_val_images=num_val_images, num_train_videos=num_train_videos,
                          num_val_videos=num_val_videos, image_size=image_size,
                          video_size=video_size, min_frames=min_frames, max_frames=max_frames)
    with _managed(root, cfg, force).writing() as tmp:
        return _generate_into(OmgShapesPaths(tmp), cfg, progress)


def prepare_omg_shapes(root: Optional[PathLike] = None, *, force: bool = False,
                       progress: bool = True, **params: Any) -> Tuple[Dict[str, Any], bool]:
    """Generate OMG-Shapes unless ``root`` already holds it, complete, from the same generator
    version and parameters (``force`` regenerates).

    ``params`` are the keyword arguments of :func:`generate_omg_shapes`. Returns
    ``(counts, generated)``; ``generated`` is False when the existing dataset was kept.
    """
    root = Path(root) if root is not None else default_omg_shapes_root()
    if _managed(root, OmgShapesConfig(**params), force).up_to_date():
        meta = read_meta(root)
        if meta is not None and "counts" in meta:
            return meta["counts"], False
    return generate_omg_shapes(root, force=force, progress=progress, **params), True
