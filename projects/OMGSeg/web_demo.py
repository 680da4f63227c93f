#!/usr/bin/env python
"""OMG-Seg web demo (Gradio), served on localhost.

    python projects/OMGSeg/web_demo.py                       # the make-demo tiny model, port 7860
    python projects/OMGSeg/web_demo.py --port 8000 --config-file configs/omg_convnext_large.yaml \
        --opts MODEL.WEIGHTS omg_seg_convl_d2.pth MODEL.DEVICE cpu

Image tab: upload an image (or pick one of the OMG-Shapes val images when the benchmark is
generated), choose a task. "prompt": click the image to add a point (box mode: two clicks make a
box), or draw strokes in the Scribble editor and press "Segment scribble"; each prompt gets a mask
and a label from the vocabulary. "panoptic" / "instance" / "semantic": the whole image. The
vocabulary box takes ``thing,thing | stuff,stuff``; editing it relabels the current result.
Video tab: upload a short video, choose a task; for "vos" click the objects on the first frame.

The image is encoded once (``PromptPredictor``): further clicks run only the decoder.
"""
import argparse
import glob
import os
import sys
import warnings
from typing import List, Optional

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                            category=FutureWarning)
    from omgseg_demo.inputs import DemoInputError
    from omgseg_demo.segmenter import Segmenter, setup_cfg
    from omgseg_demo.web_session import WEB_TASKS, WEB_VIDEO_TASKS, PromptState, WebSession

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = os.path.join(REPO, "output", "demo", "demo_config.yaml")
EXAMPLE_GLOB = os.path.join(os.environ.get("DETECTRON2_DATASETS", os.path.join(REPO, "datasets")),
                            "omg_shapes", "images", "val", "*.jpg")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="OMG-Seg web demo (Gradio)")
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE",
                        help="model config (default: the make-demo config; MODEL.WEIGHTS "
                             "defaults to model_final.pth beside it)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--vocabulary", default=None,
                        help="initial vocabulary (default: the config's test dataset classes)")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--examples", default=EXAMPLE_GLOB,
                        help="glob of example images offered on the page")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER,
                        help="config overrides, KEY VALUE pairs")
    return parser


def default_vocabulary_text(segmenter: Segmenter) -> str:
    """``things | stuff`` from the model's vocabulary, first synonym of each class."""
    from omgseg_demo.segmenter import display_name

    vocab = segmenter.vocabulary
    if vocab is None:
        return ""
    things = [display_name(n) for n, t in zip(vocab.names, vocab.is_thing) if t]
    stuff = [display_name(n) for n, t in zip(vocab.names, vocab.is_thing) if not t]
    return ",".join(things) + (" | " + ",".join(stuff) if stuff else "")


def build_app(session: WebSession, vocabulary: str, examples: Optional[List[str]] = None):
    """The Gradio ``Blocks`` app on ``session``."""
    import gradio as gr

    def error(e: Exception):
        return gr.Error(" ".join(str(e).split()))

    def render(image, task, vocab, state, regions=None):
        try:
            picture, labels = session.render(image, task, vocab, state, regions)
        except (DemoInputError, ValueError) as e:
            raise error(e) from None
        return picture, labels

    def on_upload(image, task, vocab):
        state = PromptState()
        if image is None:
            return None, "", state
        if task == "prompt":
            return image, "", state
        picture, labels = render(image, task, vocab, state)
        return picture, labels, state

    def on_select(image, task, mode, vocab, state, evt: gr.SelectData):
        if image is None:
            raise gr.Error("upload or pick an image first")
        x, y = evt.index[0], evt.index[1]
        state = state.click(x, y, mode)
        if task != "prompt":
            task = "prompt"
        picture, labels = render(image, task, vocab, state)
        return picture, labels, state, task

    def on_change(image, task, vocab, state):
        if image is None:
            return None, ""
        return render(image, task, vocab, state)

    def on_scribble(editor, image, vocab, state):
        if image is None:
            raise gr.Error("upload or pick an image first")
        from omgseg_demo.web_session import scribble_mask

        regions = scribble_mask(editor, image.shape[:2])
        if regions is None:
            raise gr.Error("draw a stroke on the scribble editor first")
        picture, labels = render(image, "prompt", vocab, state, regions)
        return picture, labels

    def on_clear(image, task, vocab):
        state = PromptState()
        if image is None:
            return None, "", state
        picture, labels = render(image, task, vocab, state)
        return picture, labels, state

    def on_video(video, task, vocab, state):
        try:
            return session.render_video(video, task, vocab, state)
        except (DemoInputError, ValueError) as e:
            raise error(e) from None

    def on_video_upload(video):
        if not video:
            return None, PromptState()
        try:
            return session.first_frame(video), PromptState()
        except (ValueError, OSError) as e:
            raise error(e) from None

    def on_frame_select(frame, mode, state, evt: gr.SelectData):
        from omgseg.utils.prompt_drawing import draw_prompts

        state = state.click(evt.index[0], evt.index[1], mode)
        return draw_prompts(frame, state.points, state.boxes), state

    with gr.Blocks(title="OMG-Seg demo") as app:
        gr.Markdown("## OMG-Seg: one model for image, video and prompt segmentation\n"
                    "Click the input image to segment what you click (box mode: two clicks).")
        with gr.Tab("Image"):
            state = gr.State(PromptState())
            with gr.Row():
                image = gr.Image(label="Input (click to prompt)", type="numpy",
                                 sources=["upload"], elem_id="input_image")
                result = gr.Image(label="Result", type="numpy", interactive=False,
                                  format="png", elem_id="result_image")
            with gr.Row():
                task = gr.Radio(list(WEB_TASKS), value="prompt", label="Task", elem_id="task")
                mode = gr.Radio(["point", "box"], value="point", label="Click adds a",
                                elem_id="mode")
            vocab = gr.Textbox(value=vocabulary, label="Vocabulary (things | stuff)",
                               elem_id="vocabulary")
            labels = gr.Textbox(label="Labels", interactive=False, elem_id="labels")
            clear = gr.Button("Clear prompts", elem_id="clear")
            with gr.Accordion("Scribble", open=False):
                editor = gr.ImageEditor(label="Draw strokes", type="numpy",
                                        elem_id="scribble_editor")
                scribble = gr.Button("Segment scribble", elem_id="segment_scribble")
            if examples:
                gr.Examples(examples=[[e] for e in examples], inputs=[image],
                            label="OMG-Shapes val images")
            image.upload(on_upload, [image, task, vocab], [result, labels, state])
            image.change(lambda im: im, [image], [editor])
            image.select(on_select, [image, task, mode, vocab, state],
                         [result, labels, state, task])
            task.change(on_change, [image, task, vocab, state], [result, labels])
            vocab.submit(on_change, [image, task, vocab, state], [result, labels])
            clear.click(on_clear, [image, task, vocab], [result, labels, state])
            scribble.click(on_scribble, [editor, image, vocab, state], [result, labels])
        with gr.Tab("Video"):
            vstate = gr.State(PromptState())
            with gr.Row():
                video = gr.Video(label="Input video", sources=["upload"], elem_id="input_video")
                frame = gr.Image(label="First frame (click objects for vos)", type="numpy",
                                 interactive=False, elem_id="first_frame")
            with gr.Row():
                vtask = gr.Radio(list(WEB_VIDEO_TASKS), value="panoptic", label="Task")
                vmode = gr.Radio(["point", "box"], value="point", label="Click adds a")
            run = gr.Button("Run on the video", elem_id="run_video")
            vresult = gr.Video(label="Result", elem_id="result_video")
            video.change(on_video_upload, [video], [frame, vstate])
            frame.select(on_frame_select, [frame, vmode, vstate], [frame, vstate])
            run.click(on_video, [video, vtask, vocab, vstate], [vresult])
    return app


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        cfg = setup_cfg(args.config_file, args.opts)
        segmenter = Segmenter(cfg, args.confidence_threshold)
        session = WebSession(segmenter)
        vocabulary = args.vocabulary or default_vocabulary_text(segmenter)
        session.set_vocabulary(vocabulary)
    except (DemoInputError, ValueError, OSError) as e:
        print(f"web_demo.py: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    examples = sorted(glob.glob(args.examples))[:6] if args.examples else []
    app = build_app(session, vocabulary, examples)
    print(f"serving on http://{args.host}:{args.port}", flush=True)
    app.queue().launch(server_name=args.host, server_port=args.port, share=False,
                       show_error=True, inbrowser=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
