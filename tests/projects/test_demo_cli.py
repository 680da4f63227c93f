"""projects/OMGSeg/demo.py: argument parsing, every task on a tiny random model (in-process), and
bad input (one error line, exit status 1, nothing written)."""
import os

import numpy as np
import pytest
from PIL import Image

import demo
from helpers_demo import VOCABULARY, shapes_image, write_frames, write_tiny_model
from omgseg_demo.inputs import DemoInputError, parse_boxes, parse_points, parse_vocabulary


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_cli")
    config = write_tiny_model(root / "model")
    image = root / "shapes.png"
    Image.fromarray(shapes_image()).save(image)
    mask = np.zeros((96, 128), np.uint8)
    mask[20:70, 30:90] = 1
    mask[60:80, 95:115] = 2
    Image.fromarray(mask).save(root / "mask.png")
    return {"config": config, "image": str(image), "mask": str(root / "mask.png"),
            "frames": write_frames(root / "frames")}


def _run(files, *args):
    return demo.main(["--config-file", files["config"], "--vocabulary", VOCABULARY,
                      *args])


def test_parser_reads_every_option():
    args = demo.get_parser().parse_args([
        "--input", "a.jpg", "b/*.png", "--output", "out/", "--task", "prompt",
        "--confidence-threshold", "0.3", "--vocabulary", "cat,dog", "--points", "1,2;3,4",
        "--boxes", "0,0,5,5", "--scribble", "s.png", "--mask", "m.png",
        "--reference-image", "r.jpg", "--opts", "MODEL.DEVICE", "cpu"])
    assert args.input == ["a.jpg", "b/*.png"] and args.task == "prompt"
    assert args.confidence_threshold == 0.3 and args.opts == ["MODEL.DEVICE", "cpu"]
    assert args.reference_image == "r.jpg" and args.scribble == "s.png"
    with pytest.raises(SystemExit):  # --input / --video-input / --webcam are exclusive
        demo.get_parser().parse_args(["--input", "a.jpg", "--webcam"])


def test_prompt_and_vocabulary_forms(tmp_path):
    assert parse_points("1,2; 3.5,4").tolist() == [[1, 2], [3.5, 4]]
    assert parse_boxes("0,0,5,6").tolist() == [[0, 0, 5, 6]]
    with pytest.raises(DemoInputError, match="inverted"):
        parse_boxes("5,0,1,6")
    with pytest.raises(DemoInputError, match="3 numbers"):
        parse_points("1,2,3")
    assert parse_vocabulary("cat, dog,,grass") == ["cat", "dog", "grass"]
    vocab = tmp_path / "v.txt"
    vocab.write_text("# classes\nperson, child\n\ncar\n")
    assert parse_vocabulary(str(vocab)) == ["person,child", "car"]


@pytest.mark.parametrize("task", ["panoptic", "instance", "semantic"])
def test_image_tasks_write_a_drawn_picture(files, tmp_path, task, capsys):
    out = tmp_path / f"{task}.png"
    assert _run(files, "--input", files["image"], "--task", task, "--output", str(out)) == [
        str(out)]
    picture = np.asarray(Image.open(out))
    assert picture.shape == (96, 128, 3)
    if task != "instance":  # instances may all fall under the threshold on a random model
        assert np.abs(picture.astype(int) - shapes_image().astype(int)).mean() > 1
    assert f"{task}:" in capsys.readouterr().out
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []


def test_prompts_give_one_labelled_mask_each(files, tmp_path, capsys):
    out = tmp_path / "prompt.png"
    _run(files, "--input", files["image"], "--task", "prompt", "--points", "60,45",
         "--boxes", "30,20,90,70", "--scribble", files["mask"], "--output", str(out))
    line = capsys.readouterr().out.splitlines()[0]
    assert "prompt: 4 segments" in line  # 1 click + 1 box + 2 scribble objects
    names = line.split("[")[1].split("]")[0].split(", ")
    assert set(names) <= set(VOCABULARY.split(","))
    picture = np.asarray(Image.open(out))
    assert (picture[45, 60] == 255).all()  # the click, drawn in white


def test_referring_and_multiple_inputs_into_a_folder(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    written = _run(files, "--input", files["image"], files["frames"] + "/0000[0-1].jpg",
                   "--task", "prompt", "--reference-image", files["image"], "--points",
                   "60,45", "--output", str(out))
    assert sorted(os.path.basename(p) for p in written) == ["00000.png", "00001.png",
                                                            "shapes.png"]


@pytest.mark.parametrize("task,extra", [("panoptic", []), ("instance", []),
                                        ("vos", ["--mask"]), ("vos", ["--points", "60,45"])])
def test_video_tasks(files, tmp_path, task, extra):
    if extra == ["--mask"]:
        extra = ["--mask", files["mask"]]
    out = tmp_path / "video.mp4"
    _run(files, "--video-input", files["frames"], "--task", task, "--output", str(out), *extra)
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()


def test_video_strip(files, tmp_path):
    out = tmp_path / "strip.png"
    _run(files, "--video-input", files["frames"], "--task", "semantic", "--output", str(out),
         "--strip-frames", "3")
    strip = np.asarray(Image.open(out))
    assert strip.shape == (2 * 96 + 4, 3 * 128 + 2 * 4, 3)


# ---- bad input: one line on stderr, exit status 1, nothing (half-)written ---------------------
def _bad(files, tmp_path, capsys, *args, output="out.png"):
    out = tmp_path / output
    code = demo.cli(["--config-file", files["config"], "--vocabulary", VOCABULARY,
                     "--output", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith("demo.py: error: ")
    assert os.listdir(tmp_path) == [] or all(not f.startswith((".tmp", "out"))
                                             for f in os.listdir(tmp_path))
    return err


def test_missing_input(files, tmp_path, capsys):
    assert "file not found" in _bad(files, tmp_path, capsys, "--input", "nope.jpg")


def test_the_script_exits_1_with_one_stderr_line(files, tmp_path):
    """As a user runs it: a subprocess, exit status 1, exactly one stderr line, no output."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, demo.__file__, "--config-file", files["config"], "--input",
         files["image"], "--task", "prompt", "--points", "500,10", "--output",
         str(tmp_path / "out.png")],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "demo.py: error: --points: item 1 has (500, 10) outside image "
        f"{files['image']!r} (width 128, height 96; x, y in pixels)"]
    assert os.listdir(tmp_path) == []


def test_unreadable_input(files, tmp_path, capsys):
    broken = tmp_path.parent / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    assert "cannot read image" in _bad(files, tmp_path, capsys, "--input", str(broken))


def test_undecodable_video(files, tmp_path, capsys):
    broken = tmp_path.parent / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    err = _bad(files, tmp_path, capsys, "--video-input", str(broken), "--task", "panoptic",
               output="out.mp4")
    assert "--video-input" in err and "broken.mp4" in err
    frames = tmp_path.parent / "broken_frames"
    frames.mkdir()
    (frames / "00000.jpg").write_bytes(b"garbage")
    err = _bad(files, tmp_path, capsys, "--video-input", str(frames), output="out.mp4")
    assert "frame 0" in err and "00000.jpg" in err


def test_webcam_that_does_not_open(files, tmp_path, capsys, monkeypatch):
    import cv2

    class Closed:
        def __init__(self, *a):
            pass

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", Closed)
    built = []
    monkeypatch.setattr(demo, "build_segmenter", lambda args: built.append(1))
    assert "cannot be opened" in _bad(files, tmp_path, capsys, "--webcam", output="cam.mp4")
    assert built == []  # refused before the model is built
    assert "--output out.mp4" in _bad(files, tmp_path, capsys, "--webcam")


def test_prompt_outside_the_image(files, tmp_path, capsys):
    err = _bad(files, tmp_path, capsys, "--input", files["image"], "--task", "prompt",
               "--points", "500,10")
    assert "outside" in err and "width 128" in err


def test_empty_vocabulary(files, tmp_path, capsys):
    empty = tmp_path.parent / "empty_vocab.txt"
    empty.write_text("# nothing\n\n")
    err = _bad(files, tmp_path, capsys, "--input", files["image"], "--vocabulary", str(empty))
    assert "is empty" in err


def test_failed_video_leaves_no_partial_mp4(files, tmp_path, monkeypatch):
    from omgseg_demo import segmenter

    def fail(self, rgb, out, t, task):
        if t == 2:
            raise ValueError("frame 2 failed")
        return rgb

    monkeypatch.setattr(segmenter.Segmenter, "draw_video_frame", fail)
    out = tmp_path / "video.mp4"
    with pytest.raises(ValueError, match="frame 2"):
        _run(files, "--video-input", files["frames"], "--task", "panoptic", "--output", str(out))
    assert os.listdir(tmp_path) == []
