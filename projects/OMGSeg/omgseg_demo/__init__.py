"""The OMG-Seg demos' library: input parsing, one model serving every task, drawing and output
writing. ``demo.py`` (command line) and ``web_demo.py`` (Gradio) are thin front ends on it."""
from .inputs import DemoInputError
from .segmenter import TASKS, Segmenter, setup_cfg

__all__ = ["DemoInputError", "Segmenter", "TASKS", "setup_cfg"]
