"""VideoFrames: lazy frames of a video from image files, a folder or a video file; test-time
resize; errors naming the video, the frame and the file."""
import pickle

import cv2
import numpy as np
import pytest
from PIL import Image

from detectron2.data import transforms as T

import omgseg.data.dataset_mappers.image_io as image_io
from omgseg.data.video_io import VideoFrames

H, W = 24, 32
# ResizeShortestEdge(12, 100): short edge 24 -> 12, so 24 x 32 -> 12 x 16.
RESIZE = [T.ResizeShortestEdge(12, 100)]


def write_frame(path, value, h=H, w=W):
    """A uniform frame: every pixel (R, G, B) = (value, value // 2, 255 - value)."""
    arr = np.empty((h, w, 3), np.uint8)
    arr[:] = (value, value // 2, 255 - value)
    Image.fromarray(arr).save(path)
    return str(path)


def frame_files(tmp_path, values, ext="png"):
    return [write_frame(tmp_path / f"{t:05d}.{ext}", v) for t, v in enumerate(values)]


def write_video(path, values, h=H, w=W, fourcc="MJPG"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 5, (w, h))
    assert writer.isOpened()
    for v in values:
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = (255 - v, v // 2, v)  # BGR of (R, G, B) = (v, v // 2, 255 - v)
        writer.write(frame)
    writer.release()
    return str(path)


def test_image_files_are_read_lazily_resized_and_in_format(tmp_path, monkeypatch):
    files = frame_files(tmp_path, [0, 40, 80, 120])
    calls = []
    real = image_io.read_image_checked
    monkeypatch.setattr(image_io, "read_image_checked",
                        lambda rec, fmt: calls.append(rec["file_name"]) or real(rec, fmt))
    frames = VideoFrames(files, RESIZE, "RGB", video_id="v")
    assert calls == []  # nothing decoded at construction
    assert len(frames) == 4 and frames.file_names == files and frames.video_file is None
    assert frames.original_size == (24, 32) and frames.size == (12, 16)
    assert frames.video_id == "v"

    f2 = frames[2]
    assert calls == [files[2]]  # one decode per frame asked
    assert f2.dtype == np.uint8 and f2.shape == (12, 16, 3)
    assert (f2 == np.array([80, 40, 175], np.uint8)).all()
    assert (frames[-1] == np.array([120, 60, 135], np.uint8)).all()
    assert [int(f[0, 0, 0]) for f in frames[1:3]] == [40, 80]  # slice -> list
    assert [int(f[0, 0, 0]) for f in frames] == [0, 40, 80, 120]
    # No frame is kept by the object.
    assert not any(isinstance(v, np.ndarray) for v in vars(frames).values())

    bgr = VideoFrames(files, (), "BGR")
    assert bgr.size == (24, 32) and (bgr[1][5, 5] == np.array([215, 20, 40])).all()

    clip = frames.clip_tensor(1, 3)
    assert tuple(clip.shape) == (2, 3, 12, 16) and clip[1, 0, 0, 0].item() == 80
    with pytest.raises(IndexError, match="out of range"):
        frames[4]


def test_folder_is_sorted_numerically_and_ignores_other_files(tmp_path):
    for name, v in [("10.png", 100), ("2.png", 20), ("1.png", 10)]:
        write_frame(tmp_path / name, v)
    (tmp_path / "notes.txt").write_text("not a frame")
    frames = VideoFrames(str(tmp_path), RESIZE)
    assert [f.rsplit("/", 1)[1] for f in frames.file_names] == ["1.png", "2.png", "10.png"]
    assert [int(f[0, 0, 0]) for f in frames] == [10, 20, 100]
    assert frames.video_id == tmp_path.name


def test_video_file_random_access_and_pickling(tmp_path):
    values = [0, 60, 120, 180, 240]
    frames = VideoFrames(write_video(tmp_path / "clip.avi", values), RESIZE, "RGB",
                         video_id="clip")
    assert len(frames) == 5 and frames.file_names is None
    assert frames.video_file.endswith("clip.avi")
    assert frames.original_size == (24, 32) and frames.size == (12, 16)
    order = [3, 4, 1, 1, 0, 2]  # forward jump, next, backward (re-open), same again, ...
    for t in order:
        f = frames[t]
        assert f.shape == (12, 16, 3)
        # MJPEG is lossy: within a few grey levels of (v, v // 2, 255 - v).
        assert np.abs(f.astype(int).mean((0, 1)) - [values[t], values[t] // 2, 255 - values[t]]
                      ).max() < 6, t
    copy = pickle.loads(pickle.dumps(frames))  # an open capture does not travel
    assert copy._cap is None and abs(int(copy[4][0, 0, 0]) - 240) < 6


def test_one_frame_videos(tmp_path):
    single = VideoFrames(write_frame(tmp_path / "only.jpg", 90), RESIZE, video_id="one")
    assert len(single) == 1 and single[0].shape == (12, 16, 3)
    assert len(VideoFrames([str(tmp_path / "only.jpg")])) == 1
    assert len(VideoFrames(write_video(tmp_path / "one.avi", [50]))) == 1


def test_missing_and_corrupt_frames_fail_when_read(tmp_path):
    files = frame_files(tmp_path, [0, 40, 80])
    files.append(str(tmp_path / "00003.png"))  # never written
    (tmp_path / "00001.png").write_bytes(b"not a png at all")
    frames = VideoFrames(files, video_id="vid_7")  # frame 0 is fine: construction works
    assert frames[0].shape == (24, 32, 3) and frames[2].shape == (24, 32, 3)
    with pytest.raises(ValueError, match=r"video 'vid_7', frame 1 \(.*00001\.png\).*decode"):
        frames[1]
    with pytest.raises(FileNotFoundError, match=r"video 'vid_7', frame 3 \(.*00003\.png\)"):
        frames[3]


def test_frame_of_another_size_names_video_and_frame(tmp_path):
    files = frame_files(tmp_path, [0, 40])
    files.append(write_frame(tmp_path / "00002.png", 80, h=30))
    frames = VideoFrames(files, video_id="vid_3")
    frames[1]
    with pytest.raises(ValueError, match=r"video 'vid_3', frame 2 .*\(30, 32\).*\(24, 32\)"):
        frames[2]
    # The record's size wins over the first frame's.
    with pytest.raises(ValueError, match=r"video 'vid_3', frame 0 .*expects \(30, 32\)"):
        VideoFrames(files, video_id="vid_3", original_size=(30, 32))[0]


def test_empty_folder_unreadable_video_and_bad_sources(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"video 'empty'.*no image frames.*empty"):
        VideoFrames(str(empty))
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00\x01 definitely not a video" * 10)
    with pytest.raises(ValueError, match=r"video 'broken.mp4'.*cannot open.*broken\.mp4"):
        VideoFrames(str(garbage))
    with pytest.raises(FileNotFoundError, match="video file not found"):
        VideoFrames(str(tmp_path / "nope.mp4"))
    with pytest.raises(ValueError, match="video 'x' has no frames"):
        VideoFrames([], video_id="x")
    with pytest.raises(TypeError, match="frame 1: frame file must be a path"):
        VideoFrames(["a.png", None], video_id="x")
