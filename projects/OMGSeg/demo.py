#!/usr/bin/env python
"""OMG-Seg command-line demo (Detectron2's ``demo/demo.py`` idiom): images, videos, a webcam;
panoptic / instance / semantic segmentation, video object segmentation and prompts, with a
vocabulary typed on the command line.

The tiny model trained by ``make demo`` (CPU):

    W="--config-file output/demo/demo_config.yaml --opts MODEL.WEIGHTS output/demo/model_final.pth"
    python projects/OMGSeg/demo.py --input "datasets/omg_shapes/images/val/00000*.jpg" \
        --output out/ --task panoptic $W
    python projects/OMGSeg/demo.py --input img.jpg --task instance --confidence-threshold 0.5 \
        --vocabulary "circle,square,star" --output out.png $W
    python projects/OMGSeg/demo.py --input img.jpg --task prompt --points "40,60;120,30" \
        --boxes "10,10,90,80" --scribble strokes.png --output prompts.png $W
    python projects/OMGSeg/demo.py --input other.jpg --task prompt --reference-image img.jpg \
        --points "40,60" --output referring.png $W           # regions of the clicked kind
    python projects/OMGSeg/demo.py --video-input clip.mp4 --task panoptic --output vps.mp4 $W
    python projects/OMGSeg/demo.py --video-input frames/ --task vos --mask first.png \
        --output vos.mp4 $W                                    # or --points on the first frame
    python projects/OMGSeg/demo.py --video-input frames/ --task instance --output strip.png $W

Real weights (``tools/convert_omgseg_official.py`` converts the official head
``omg_seg_convl.pth``; ``MODEL.OMG.CLIP.PRETRAINED`` is an OpenCLIP tag or a local file):

    python tools/convert_omgseg_official.py omg_seg_convl.pth omg_seg_convl_d2.pth
    python projects/OMGSeg/demo.py --config-file configs/omg_convnext_large.yaml \
        --input photo.jpg --task panoptic --vocabulary "person,dog,grass,sky" \
        --output out.png --opts MODEL.WEIGHTS omg_seg_convl_d2.pth MODEL.DEVICE cpu

Outputs: an image file, or a folder for several inputs; a video becomes an mp4 (``--output``
ending in ``.mp4``) or, with ``.png`` / ``.jpg``, a strip of ``--strip-frames`` evenly spaced
frames (rows: input / answer). Every output is written to a temporary sibling and renamed, so a
failed run leaves nothing half-written. Bad input (a missing or unreadable file, a video OpenCV
cannot decode, a webcam that does not open, prompts outside the image, an empty vocabulary)
ends the run with one ``demo.py: error: ...`` line on stderr and exit status 1.
"""
import argparse
import os
import sys
import time
import warnings
from typing import List, Optional

# OpenCV's own log lines (camera probing, container parsing) would follow our one-line errors.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import numpy as np  # noqa: E402

with warnings.catch_warnings():
    # detectron2 / fvcore call torch.jit.script at import time (a FutureWarning on recent
    # PyTorch), as in train_net.py: silence exactly that one.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                            category=FutureWarning)
    from omgseg_demo.inputs import (
        DemoInputError,
        check_inside,
        expand_inputs,
        parse_boxes,
        parse_points,
        parse_vocabulary,
        read_image_rgb,
        read_object_masks,
    )
    from omgseg_demo.segmenter import TASKS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = os.path.join(REPO, "output", "demo", "demo_config.yaml")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="OMG-Seg demo: one model for image, video and prompt segmentation",
        epilog="Example: python projects/OMGSeg/demo.py --input img.jpg --task prompt "
               "--points 40,60 --output out.png",
    )
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE",
                        help="model config (default: the make-demo config; MODEL.WEIGHTS "
                             "defaults to model_final.pth beside it)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", help="image files or glob patterns")
    source.add_argument("--video-input", help="a video file or a folder of frames")
    source.add_argument("--webcam", action="store_true", help="take frames from webcam 0")
    parser.add_argument("--output", help="output file or folder (default: show nothing, print "
                                         "a summary)")
    parser.add_argument("--task", choices=TASKS, default="panoptic")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="minimum score of drawn instances (instance / video instance)")
    parser.add_argument("--vocabulary", help='thing classes: "a,b,c" or a file (one class per '
                                             "line, synonyms comma-separated)")
    parser.add_argument("--stuff-vocabulary", help="stuff classes, in the same forms")
    parser.add_argument("--points", help="clicks x,y[;x,y...] (original pixels)")
    parser.add_argument("--boxes", help="boxes x0,y0,x1,y1[;...]")
    parser.add_argument("--scribble", help="an image whose non-zero pixels are strokes (one "
                                           "object per value)")
    parser.add_argument("--mask", help="an image whose non-zero pixels are object masks (one "
                                       "object per value); the first frame's objects for vos")
    parser.add_argument("--reference-image", help="referring segmentation: the prompts mark a "
                                                  "region of this image; each input gets the "
                                                  "regions of the same kind")
    parser.add_argument("--strip-frames", type=int, default=6,
                        help="frames of a video drawn into a .png / .jpg --output")
    parser.add_argument("--max-frames", type=int, default=0,
                        help="webcam: stop after this many frames (0: until Ctrl-C)")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER,
                        help="config overrides, KEY VALUE pairs")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Argument combinations that cannot work, refused before anything is built."""
    has_prompts = any(getattr(args, k) for k in ("points", "boxes", "scribble"))
    if args.task == "prompt" and not (has_prompts or args.mask):
        raise DemoInputError("--task prompt needs --points, --boxes, --scribble or --mask")
    if args.task == "prompt" and args.video_input:
        raise DemoInputError("--task prompt takes images; for a video use --task vos with "
                             "prompts on the first frame")
    if args.task == "vos" and not args.video_input:
        raise DemoInputError("--task vos needs --video-input")
    if args.task == "vos" and not (has_prompts or args.mask):
        raise DemoInputError("--task vos needs --mask (first-frame objects) or --points / "
                             "--boxes / --scribble on the first frame")
    if args.reference_image and args.task != "prompt":
        raise DemoInputError("--reference-image works with --task prompt")
    if args.webcam and args.task not in ("panoptic", "instance", "semantic"):
        raise DemoInputError("--webcam runs the image tasks frame by frame (panoptic, instance "
                             "or semantic)")
    if args.webcam and not (args.output or "").lower().endswith(".mp4"):
        raise DemoInputError("--webcam needs --output out.mp4 (frames are written to a video; "
                             "this OpenCV build has no window to show them in)")
    video_outputs = (".mp4", ".png", ".jpg", ".jpeg", ".bmp", ".webp")
    if args.video_input and args.output and not args.output.lower().endswith(video_outputs):
        raise DemoInputError(f"--output: a video's output must end with one of {video_outputs}, "
                             f"got {args.output!r}")
    if args.strip_frames < 1:
        raise DemoInputError("--strip-frames must be >= 1")
    if args.vocabulary is not None:
        parse_vocabulary(args.vocabulary)
    if args.stuff_vocabulary is not None:
        parse_vocabulary(args.stuff_vocabulary, "--stuff-vocabulary")


def _prompt_arrays(args, size, where: str):
    """(points [N, 2], boxes [M, 4], regions bool [S, H, W]) checked against ``size``."""
    points = parse_points(args.points) if args.points else None
    boxes = parse_boxes(args.boxes) if args.boxes else None
    check_inside(size, points, boxes, where)
    regions = []
    if args.scribble:
        regions.append(read_object_masks(args.scribble, size, "--scribble"))
    if args.mask and args.task == "prompt":
        regions.append(read_object_masks(args.mask, size, "--mask"))
    regions = np.concatenate(regions) if regions else None
    return points, boxes, regions


def build_segmenter(args):
    from omgseg_demo.segmenter import Segmenter, setup_cfg

    cfg = setup_cfg(args.config_file, args.opts)
    segmenter = Segmenter(cfg, args.confidence_threshold)
    if args.vocabulary or args.stuff_vocabulary:
        things = parse_vocabulary(args.vocabulary) if args.vocabulary else []
        stuff = (parse_vocabulary(args.stuff_vocabulary, "--stuff-vocabulary")
                 if args.stuff_vocabulary else [])
        segmenter.set_vocabulary(things, stuff)
    return segmenter


def run_images(args, segmenter) -> List[str]:
    from omgseg_demo.outputs import output_paths, write_image

    files = expand_inputs(args.input)
    images = [read_image_rgb(f) for f in files]  # every input readable before any output
    reference, prompts = None, []
    if args.reference_image:
        reference = read_image_rgb(args.reference_image, "--reference-image")
        prompts = [_prompt_arrays(args, reference.shape[:2], "the reference image")] * len(files)
    elif args.task == "prompt":
        prompts = [_prompt_arrays(args, im.shape[:2], f"image {f!r}")
                   for f, im in zip(files, images)]
    outputs = output_paths(args.output, files, ".png")
    written = []
    for i, (path, rgb) in enumerate(zip(files, images)):
        start = time.time()
        if reference is not None:
            picture, labels = segmenter.draw_referring(reference, rgb, *prompts[i])
        elif args.task == "prompt":
            picture, labels = segmenter.draw_prompts(rgb, *prompts[i])
        else:
            out = segmenter.image_outputs(rgb)
            picture = segmenter.draw_image(rgb, args.task, out)
            labels = segmenter.image_labels(out, args.task)
        print(f"{path}: {args.task}: {len(labels)} segments [{', '.join(labels[:12])}"
              f"{', ...' if len(labels) > 12 else ''}] in {time.time() - start:.2f}s")
        if outputs:
            write_image(outputs[i], picture)
            written.append(outputs[i])
    return written


def _strip_indices(length: int, count: int) -> List[int]:
    return sorted(set(np.linspace(0, length - 1, min(count, length)).round().astype(int)))


def run_video(args, segmenter) -> List[str]:
    import tqdm

    from omgseg.utils.visualization import frame_strip
    from omgseg_demo.outputs import IMAGE_SUFFIXES, VideoSink, write_image

    source = args.video_input
    if not os.path.exists(source):
        raise DemoInputError(f"--video-input: not found: {source!r}")
    try:
        frames = segmenter.open_video(source)
    except (ValueError, OSError, TypeError) as e:
        raise DemoInputError(f"--video-input: {' '.join(str(e).split())}") from None
    vos = {}
    if args.task == "vos":
        size = frames.original_size
        if args.mask:
            vos["first_frame_masks"] = read_object_masks(args.mask, size, "--mask")
        else:
            vos["points"], vos["boxes"], vos["regions"] = _prompt_arrays(args, size,
                                                                         "the first frame")
    suffix = os.path.splitext(args.output or "")[1].lower()
    drawn = segmenter.draw_video(frames, args.task, **vos)
    progress = tqdm.tqdm(drawn, total=len(frames), desc=f"{args.task} {frames.video_id}",
                         unit="frame")
    if suffix in IMAGE_SUFFIXES:
        keep = _strip_indices(len(frames), args.strip_frames)
        originals = VideoFromSource(frames)
        rows = [[], []]
        for t, picture in enumerate(progress):
            if t in keep:
                rows[0].append(originals(t))
                rows[1].append(picture)
        write_image(args.output, frame_strip(rows))
        return [args.output]
    if args.output:
        fps = _video_fps(source)
        with VideoSink(args.output, fps) as sink:
            for picture in progress:
                sink.write(picture)
        return [args.output]
    for _ in progress:
        pass
    return []


class VideoFromSource:
    """Original RGB frames of a video (for the input row of a strip)."""

    def __init__(self, frames):
        from omgseg.data.video_io import VideoFrames

        self._rgb = VideoFrames(frames.video_file or frames.file_names, [], "RGB",
                                video_id=frames.video_id)

    def __call__(self, t: int) -> np.ndarray:
        return self._rgb.read_original(t)


def _video_fps(source: str) -> float:
    if os.path.isdir(source):
        return 10.0
    import cv2

    cap = cv2.VideoCapture(source)
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 10.0)
    finally:
        cap.release()


def check_video(source: str) -> None:
    """Refuse a missing video or one OpenCV cannot decode, before the model is built."""
    from omgseg.data.video_io import VideoFrames

    if not os.path.exists(source):
        raise DemoInputError(f"--video-input: not found: {source!r}")
    try:
        VideoFrames(source, [], "RGB").read_original(0)
    except (ValueError, OSError, TypeError) as e:
        raise DemoInputError(f"--video-input: {' '.join(str(e).split())}") from None


def open_webcam(camera: int = 0):
    """The opened ``cv2.VideoCapture`` of webcam ``camera``; raises when it does not open."""
    import cv2

    cap = cv2.VideoCapture(camera)
    if not cap.isOpened():
        cap.release()
        raise DemoInputError(f"--webcam: camera {camera} cannot be opened (no camera, or it is "
                             "in use)")
    return cap


def run_webcam(args, segmenter, cap) -> List[str]:
    """Image task per frame of the opened webcam ``cap``, written to ``--output`` (an mp4)."""
    import cv2

    from omgseg_demo.outputs import VideoSink

    try:
        with VideoSink(args.output, cap.get(cv2.CAP_PROP_FPS) or 10.0) as sink:
            while not args.max_frames or sink.frames < args.max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = np.ascontiguousarray(bgr[:, :, ::-1])
                sink.write(segmenter.draw_image(rgb, args.task))
    finally:
        cap.release()
    return [args.output]


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Run the demo; returns the files written. Raises DemoInputError for bad input."""
    args = get_parser().parse_args(argv)
    check_args(args)
    if args.input:  # cheap checks first: a missing input fails before the model is built
        for f in expand_inputs(args.input):
            read_image_rgb(f)
    if args.reference_image:
        reference = read_image_rgb(args.reference_image, "--reference-image")
        _prompt_arrays(args, reference.shape[:2], "the reference image")
    elif args.input and args.task == "prompt":
        for f in expand_inputs(args.input):
            _prompt_arrays(args, read_image_rgb(f).shape[:2], f"image {f!r}")
    if args.video_input:
        check_video(args.video_input)
    camera = open_webcam() if args.webcam else None
    from detectron2.utils.logger import setup_logger

    setup_logger(name="omgseg")
    try:
        segmenter = build_segmenter(args)
    except BaseException:
        if camera is not None:
            camera.release()
        raise
    if camera is not None:
        written = run_webcam(args, segmenter, camera)
    elif args.video_input:
        written = run_video(args, segmenter)
    else:
        written = run_images(args, segmenter)
    for path in written:
        print(f"wrote {path}")
    return written


def cli(argv: Optional[List[str]] = None) -> int:
    """``main`` with bad input turned into one ``demo.py: error: ...`` line and exit status 1."""
    from omgseg.checkpoint import CheckpointError

    try:
        main(argv)
    except (DemoInputError, CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        print(f"demo.py: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo.py: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
