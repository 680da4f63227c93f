"""`python train_net.py ...` as a user runs it (subprocess): weights, refusals, quiet output."""
import ast
import os
import subprocess
import sys

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from conftest import REPO_ROOT, make_tiny_cfg
from omgseg.checkpoint import OMGSegCheckpointer, to_official_head

TINY_OVERRIDES = [
    "MODEL.OMG.CONVS_DIM", "32", "MODEL.OMG.MASK_DIM", "32", "MODEL.OMG.HIDDEN_DIM", "32",
    "MODEL.OMG.ENC_LAYERS", "1", "MODEL.OMG.ENC_DIM_FEEDFORWARD", "64",
    "MODEL.OMG.DIM_FEEDFORWARD", "64",
    "MODEL.OMG.NHEADS", "2", "MODEL.OMG.ENC_HEADS", "2", "MODEL.OMG.DEC_LAYERS", "3",
    "MODEL.OMG.NUM_OBJECT_QUERIES", "12", "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0",
]
TRAIN_NET = os.path.join(REPO_ROOT, "train_net.py")
CONVERTER = os.path.join(REPO_ROOT, "tools", "convert_omgseg_official.py")
TINY_CONFIG = os.path.join(REPO_ROOT, "configs", "omg_tiny_synthetic.yaml")


def _run(args, cwd, timeout=300):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=str(cwd)
    )


def _train_net(tmp_path, *opts, eval_only=True):
    args = [TRAIN_NET, "--config-file", TINY_CONFIG]
    if eval_only:
        args.append("--eval-only")
    opts = list(opts)
    if "OUTPUT_DIR" not in opts:
        opts += ["OUTPUT_DIR", str(tmp_path / "eval")]
    args += opts + ["MODEL.OMG.CLIP.TEXT_CACHE_DIR", str(tmp_path / "text_cache"), *TINY_OVERRIDES]
    return _run(args, tmp_path)


def _no_library_noise(stderr):
    assert "FutureWarning" not in stderr and "torch.jit.script" not in stderr, stderr[-2000:]
    assert "DeprecationWarning" not in stderr, stderr[-2000:]


def _one_line_error(proc):
    """Refused with exit code != 0 and a single 'train_net.py: error: ...' line, no traceback."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "train_net.py: error:" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    return proc.stderr[proc.stderr.index("train_net.py: error:"):]


def test_eval_only_loads_weights_and_prints_the_table(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(str(tmp_path))
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("tiny")
    proc = _train_net(tmp_path, "MODEL.WEIGHTS", str(tmp_path / "tiny.pth"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # the results table, with the dataset named and the three task metrics present
    assert "omg_shapes_val_panoptic" in out and "PQ" in out and "mask AP" in out and "mIoU" in out
    # the given checkpoint is what was evaluated
    assert f"Loading from {tmp_path / 'tiny.pth'}" in proc.stderr + out
    _no_library_noise(proc.stderr)


def test_missing_weights_file_is_a_clear_error(synthetic_root, tmp_path):
    proc = _train_net(tmp_path, "MODEL.WEIGHTS", str(tmp_path / "nope.pth"))
    assert "nope.pth does not exist" in _one_line_error(proc)


def test_eval_only_runs_the_converted_official_head_with_local_openclip(synthetic_root, tmp_path):
    """A user's route: official-format head file -> converter -> train_net.py --eval-only, the
    backbone from a local OpenCLIP checkpoint file (MODEL.OMG.CLIP.PRETRAINED)."""
    cfg = make_tiny_cfg(str(tmp_path))
    torch.manual_seed(1)
    model = build_model(cfg)
    clip_file = tmp_path / "tiny_openclip.pt"
    torch.save(model.backbone.clip_model.state_dict(), clip_file)
    official = tmp_path / "omg_seg_tiny.pth"
    torch.save(to_official_head(model.state_dict()), official)  # 'panoptic_head.*', head only
    converted = tmp_path / "omg_seg_tiny_d2.pth"

    conv = _run([CONVERTER, str(official), str(converted)], tmp_path)
    assert conv.returncode == 0, conv.stderr[-3000:]
    assert "0 missing, 0 unexpected, 0 with another shape" in conv.stdout
    assert "prefix 'panoptic_head.'" in conv.stdout and "custom widths" in conv.stdout

    proc = _train_net(
        tmp_path, "MODEL.WEIGHTS", str(converted), "MODEL.OMG.CLIP.PRETRAINED", str(clip_file)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "holds no backbone tensors (head-only checkpoint)" in proc.stderr + proc.stdout
    assert f"come from OpenCLIP ({clip_file})" in proc.stderr + proc.stdout
    assert "omg_shapes_val_panoptic" in proc.stdout and "PQ" in proc.stdout
    _no_library_noise(proc.stderr)

    # the same route in-process rebuilds exactly the model the files came from
    cfg2 = make_tiny_cfg(str(tmp_path / "again"), **{"MODEL.OMG.CLIP.PRETRAINED": str(clip_file)})
    torch.manual_seed(2)
    rebuilt = build_model(cfg2)
    OMGSegCheckpointer(cfg2, rebuilt).load(str(converted))
    expected = model.state_dict()
    assert rebuilt.state_dict().keys() == expected.keys()
    for k, v in rebuilt.state_dict().items():
        assert torch.equal(v, expected[k]), k

    # without a backbone source the head-only file is refused
    proc = _train_net(tmp_path, "MODEL.WEIGHTS", str(converted))
    assert "MODEL.OMG.CLIP.PRETRAINED is empty" in _one_line_error(proc)
    # a non-OMG-Seg file (the OpenCLIP checkpoint itself) is refused
    proc = _train_net(tmp_path, "MODEL.WEIGHTS", str(clip_file))
    assert "not an OMG-Seg checkpoint" in _one_line_error(proc)


def test_weights_of_other_shapes_or_truncated_are_refused(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(str(tmp_path), **{"MODEL.OMG.NUM_OBJECT_QUERIES": 16})
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("q16")
    proc = _train_net(tmp_path, "MODEL.WEIGHTS", str(tmp_path / "q16.pth"))
    msg = _one_line_error(proc)
    assert "2 with another shape" in msg
    assert "mask_decoder.query_feat.weight (checkpoint [16, 32] vs model [12, 32])" in msg
    assert not (tmp_path / "eval" / "inference").exists()  # nothing was evaluated

    data = (tmp_path / "q16.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    proc = _train_net(tmp_path, "MODEL.WEIGHTS", str(tmp_path / "cut.pth"))
    assert f"Cannot read checkpoint {tmp_path / 'cut.pth'}" in _one_line_error(proc)


def test_an_output_dir_that_is_a_file_is_refused_before_writing(synthetic_root, tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("my results\n")
    proc = _train_net(tmp_path, "OUTPUT_DIR", str(target), eval_only=False)
    assert f"OUTPUT_DIR {target} is an existing file" in _one_line_error(proc)
    assert target.read_text() == "my results\n"
    assert sorted(os.listdir(tmp_path)) == ["results.txt"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_cuda_is_a_one_line_error(synthetic_root, tmp_path):
    proc = _train_net(tmp_path, "MODEL.DEVICE", "cuda", eval_only=False)
    msg = _one_line_error(proc)
    assert "MODEL.DEVICE is 'cuda'" in msg and "MODEL.DEVICE cpu" in msg
    assert len(msg.strip().splitlines()) == 1


def test_an_unregistered_dataset_is_refused_with_close_names(synthetic_root, tmp_path):
    proc = _train_net(tmp_path, "DATASETS.TEST", "('omg_shapes_val_panoptc',)")
    msg = _one_line_error(proc)
    assert "DATASETS.TEST: 'omg_shapes_val_panoptc' is not a registered dataset" in msg
    assert "did you mean omg_shapes_val_panoptic" in msg


def test_train_net_help_is_quiet(tmp_path):
    proc = _run([TRAIN_NET, "--help"], tmp_path)
    assert proc.returncode == 0 and "--eval-only" in proc.stdout
    _no_library_noise(proc.stderr)


def test_import_omgseg_is_quiet(tmp_path):
    proc = _run(["-c", "import omgseg"], tmp_path)
    assert proc.returncode == 0
    _no_library_noise(proc.stderr)


@pytest.mark.parametrize("script", [TRAIN_NET, CONVERTER])
def test_scripts_do_not_edit_sys_path(script):
    """They import the installed package (pip install -e .), never a path relative to the file."""
    tree = ast.parse(open(script).read())
    touched = [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "path"
        and isinstance(node.value, ast.Name) and node.value.id == "sys"
    ]
    assert touched == [], f"{script} uses sys.path at lines {touched}"
