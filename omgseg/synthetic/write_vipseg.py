"""VIPSeg-style video panoptic writer: ``videos/panoptic_video_{split}.json`` and one RGB-coded
id PNG per frame under ``videos/panoptic_video_{split}/<video>/``.

A track (and a stuff class) keeps the same segment id in every frame of its video.
"""
from typing import Dict, List

from panopticapi.utils import id2rgb

from .categories import OMG_SHAPES_CATEGORIES
from .io_utils import segment_record, write_json, write_png
from .paths import OmgShapesPaths, frame_stem
from .video_clips import VideoClip

__all__ = ["VIPSegWriter"]


class VIPSegWriter:
    """Collects the videos of one split; ``finalize`` writes the JSON."""

    def __init__(self, paths: OmgShapesPaths, split: str) -> None:
        self.paths, self.split = paths, split
        self.videos: List[Dict] = []
        self.annotations: List[Dict] = []

    def add_video(self, name: str, clip: VideoClip) -> int:
        """Write the id PNGs of ``clip``; returns the number of (frame, segment) records."""
        images, frame_anns = [], []
        n_segments = 0
        for t, frame in enumerate(clip.frames):
            height, width = frame.panoptic.shape
            stem = frame_stem(t)
            write_png(self.paths.vps_dir(self.split) / name / f"{stem}.png",
                      id2rgb(frame.panoptic))
            segments = [segment_record(m, s, c) for s, c, m in frame.segment_masks()]
            n_segments += len(segments)
            images.append({"id": stem, "file_name": f"{stem}.jpg", "width": width,
                           "height": height})
            frame_anns.append({"image_id": stem, "file_name": f"{stem}.png",
                               "segments_info": segments})
        self.videos.append({"video_id": name, "images": images})
        self.annotations.append({"video_id": name, "annotations": frame_anns})
        return n_segments

    def finalize(self) -> None:
        write_json(self.paths.vps_json(self.split), {
            "videos": self.videos,
            "annotations": self.annotations,
            "categories": [dict(c) for c in OMG_SHAPES_CATEGORIES],
        })
