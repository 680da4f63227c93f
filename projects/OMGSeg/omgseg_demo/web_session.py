"""The web demo's logic, free of any UI: prompts collected from clicks, the vocabulary typed in a
text box, and the answer of each task drawn on the image.

The encoded image is cached by :class:`~omgseg_demo.segmenter.Segmenter` (keyed by the image's
bytes): a new click on the same image runs only the decoder, never the backbone.
"""
import os
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .inputs import DemoInputError, check_inside, parse_vocabulary
from .outputs import VideoSink
from .segmenter import IMAGE_TASKS, Segmenter

__all__ = ["PromptState", "WebSession", "scribble_mask"]

WEB_TASKS = ("prompt",) + IMAGE_TASKS
WEB_VIDEO_TASKS = IMAGE_TASKS + ("vos",)


@dataclass
class PromptState:
    """Prompts placed on the current image: clicks [N, 2], boxes [M, 4] (x, y original pixels)
    and the first corner of a box being drawn (box mode: two clicks make a box)."""

    points: List[Tuple[float, float]] = field(default_factory=list)
    boxes: List[Tuple[float, float, float, float]] = field(default_factory=list)
    corner: Optional[Tuple[float, float]] = None

    def click(self, x: float, y: float, mode: str) -> "PromptState":
        """A new state with the click added (``mode`` "point" or "box")."""
        new = PromptState(list(self.points), list(self.boxes), self.corner)
        if mode == "box":
            if new.corner is None:
                new.corner = (float(x), float(y))
            else:
                (x0, y0), new.corner = new.corner, None
                box = (min(x0, x), min(y0, y), max(x0, x), max(y0, y))
                if box[2] > box[0] and box[3] > box[1]:
                    new.boxes.append(box)
        else:
            new.points.append((float(x), float(y)))
        return new

    @property
    def empty(self) -> bool:
        return not self.points and not self.boxes


def scribble_mask(editor_value, size: Tuple[int, int]) -> Optional[np.ndarray]:
    """The strokes of a Gradio ``ImageEditor`` value (``{"layers": [RGBA arrays], ...}``) as one
    bool [1, H, W] region, or None when nothing is drawn."""
    if not isinstance(editor_value, dict):
        return None
    drawn = np.zeros(size, bool)
    for layer in editor_value.get("layers") or []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[:2] == tuple(size):
            drawn |= (layer[..., 3] > 0) if layer.shape[2] == 4 else layer.any(-1)
    return drawn[None] if drawn.any() else None


class WebSession:
    """One model behind the web page (see the module docstring)."""

    def __init__(self, segmenter: Segmenter):
        self.segmenter = segmenter
        self._vocabulary_text: Optional[str] = None

    def set_vocabulary(self, text: str) -> None:
        """``"a,b,c"`` (things); a trailing ``| x,y`` part lists stuff classes. Re-encoding is
        skipped when the text did not change."""
        text = (text or "").strip()
        if text == self._vocabulary_text:
            return
        things_text, _, stuff_text = text.partition("|")
        things = parse_vocabulary(things_text, "vocabulary") if things_text.strip() else []
        stuff = parse_vocabulary(stuff_text, "stuff vocabulary") if stuff_text.strip() else []
        if not things and not stuff:
            raise DemoInputError("vocabulary: empty; type class names separated by commas")
        self.segmenter.set_vocabulary(things, stuff)
        self._vocabulary_text = text

    def render(self, image: np.ndarray, task: str, vocabulary: str, state: PromptState,
               regions: Optional[np.ndarray] = None) -> Tuple[np.ndarray, str]:
        """The picture (HWC uint8 RGB, image size) and the labels (one line, comma-separated)
        of ``task`` on ``image``; for "prompt" without any prompt, the image itself."""
        if image is None:
            raise DemoInputError("upload or pick an image first")
        image = np.ascontiguousarray(image[..., :3])
        self.set_vocabulary(vocabulary)
        if task == "prompt":
            if state.empty and regions is None:
                return image.copy(), ""
            points = np.asarray(state.points, float).reshape(-1, 2)
            boxes = np.asarray(state.boxes, float).reshape(-1, 4)
            check_inside(image.shape[:2], points, boxes)
            picture, labels = self.segmenter.draw_prompts(image, points, boxes, regions)
            return picture, ", ".join(labels)
        if task not in IMAGE_TASKS:
            raise DemoInputError(f"unknown task {task!r}; one of {WEB_TASKS}")
        outputs = self.segmenter.image_outputs(image)
        picture = self.segmenter.draw_image(image, task, outputs)
        return picture, ", ".join(dict.fromkeys(self.segmenter.image_labels(outputs, task)))

    def render_video(self, video_path: str, task: str, vocabulary: str, state: PromptState,
                     out_dir: Optional[str] = None) -> str:
        """The drawn video (an mp4 in ``out_dir``) of ``task``; "vos" follows the clicks /
        boxes placed on the first frame."""
        if not video_path or not os.path.exists(video_path):
            raise DemoInputError("upload a video first")
        self.set_vocabulary(vocabulary)
        frames = self.segmenter.open_video(video_path)
        vos = {}
        if task == "vos":
            vos["points"] = np.asarray(state.points, float).reshape(-1, 2)
            vos["boxes"] = np.asarray(state.boxes, float).reshape(-1, 4)
            check_inside(frames.original_size, vos["points"], vos["boxes"], "the first frame")
        out_dir = out_dir or tempfile.mkdtemp(prefix="omgseg-web-")
        path = os.path.join(out_dir, f"{task}_{frames.video_id}.mp4")
        with VideoSink(path, 10.0) as sink:
            for picture in self.segmenter.draw_video(frames, task, **vos):
                sink.write(picture)
        return path

    def first_frame(self, video_path: str) -> np.ndarray:
        """Frame 0 of a video (HWC uint8 RGB), for placing VOS prompts."""
        from omgseg.data.video_io import VideoFrames

        return VideoFrames(video_path, [], "RGB").read_original(0)
