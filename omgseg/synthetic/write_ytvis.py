"""YouTube-VIS 2019 writer: ``videos/ytvis_{split}.json``, one annotation per thing track.

Per frame, a track has an RLE (``counts`` as str), an area and an [x, y, w, h] box, or ``None``
for all three where it is not visible. Annotations follow the track order of each video.
"""
from typing import Dict, List

from .categories import THING_CATEGORIES
from .io_utils import rle_record, write_json
from .paths import OmgShapesPaths, frame_stem
from .video_clips import VideoClip

__all__ = ["YTVISWriter"]


class YTVISWriter:
    """Collects the videos of one split; ``finalize`` writes the JSON."""

    def __init__(self, paths: OmgShapesPaths, split: str) -> None:
        self.paths, self.split = paths, split
        self.videos: List[Dict] = []
        self.annotations: List[Dict] = []

    def add_video(self, video_id: int, name: str, clip: VideoClip) -> None:
        height, width = clip.frames[0].panoptic.shape
        n = len(clip.frames)
        self.videos.append({
            "id": video_id, "width": width, "height": height, "length": n,
            "file_names": [f"{name}/{frame_stem(t)}.jpg" for t in range(n)],
        })
        for track in clip.tracks:
            segs, areas, boxes = [], [], []
            for frame in clip.frames:
                if track.segment_id in frame.segments:
                    rec = rle_record(frame.panoptic == track.segment_id)
                    segs.append(rec["segmentation"])
                    areas.append(rec["area"])
                    boxes.append(rec["bbox"])
                else:
                    segs.append(None)
                    areas.append(None)
                    boxes.append(None)
            self.annotations.append({
                "id": len(self.annotations) + 1, "video_id": video_id,
                "category_id": track.category_id, "iscrowd": 0, "height": height, "width": width,
                "length": 1, "segmentations": segs, "areas": areas, "bboxes": boxes,
            })

    def finalize(self) -> None:
        write_json(self.paths.ytvis_json(self.split), {
            "info": {"description": f"OMG-Shapes {self.split} (YouTube-VIS 2019 format)"},
            "licenses": [],
            "videos": self.videos,
            "annotations": self.annotations,
            "categories": [dict(c) for c in THING_CATEGORIES],
        })
