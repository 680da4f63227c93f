"""OMGSegCheckpointer: strict loading, head-only checkpoints, clear errors, atomic saves, resume."""
import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from torch import nn

from official_tsv import official_state_dict
from omgseg import add_omgseg_config
from omgseg.checkpoint import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    OMGSegCheckpointer,
    UnreadableCheckpointError,
)


class Toy(nn.Module):
    """Backbone + the two head modules, named like OMGSeg."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.backbone = nn.Linear(3, width)
        self.pixel_decoder = nn.Linear(width, 2)
        self.mask_decoder = nn.Sequential()
        self.mask_decoder.proj = nn.Linear(2, 3)


def _filled(model: nn.Module, value: float) -> dict:
    return {k: torch.full_like(v, value) for k, v in model.state_dict().items()}


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@contextlib.contextmanager
def captured_log():
    """Messages of the checkpointer's logger (independent of Detectron2's logger set-up)."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    log = logging.getLogger("omgseg.checkpoint.checkpointer")
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def _save(path, state, **extra):
    torch.save({"model": state, **extra}, path)
    return str(path)


def test_an_exact_checkpoint_loads(tmp_path):
    src = Toy()
    OMGSegCheckpointer(src, str(tmp_path)).save("model_0000004", iteration=4)
    dst = Toy()
    extra = OMGSegCheckpointer(dst).load(str(tmp_path / "model_0000004.pth"))
    assert extra["iteration"] == 4
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in dst.state_dict().items())


def test_other_shapes_are_refused_with_counts_and_names(tmp_path):
    path = _save(tmp_path / "w5.pth", _filled(Toy(width=5), 1.0))
    model = Toy(width=4)
    before = _snapshot(model)
    with pytest.raises(CheckpointMismatchError) as info:
        OMGSegCheckpointer(model).load(path)
    msg = str(info.value)
    assert path in msg and "3 tensors match" in msg and "3 with another shape" in msg
    assert "backbone.weight (checkpoint [5, 3] vs model [4, 3])" in msg
    assert "MODEL.OMG.ALLOW_PARTIAL_WEIGHTS True" in msg
    assert _unchanged(model, before)  # nothing was loaded


def test_missing_and_unexpected_tensors_are_refused(tmp_path):
    state = _filled(Toy(), 1.0)
    del state["mask_decoder.proj.bias"]
    state["mask_decoder.extra.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointMismatchError) as info:
        OMGSegCheckpointer(Toy()).load(_save(tmp_path / "c.pth", state))
    msg = str(info.value)
    assert "1 missing from the checkpoint: mask_decoder.proj.bias" in msg
    assert "1 in the checkpoint but not in the model: mask_decoder.extra.weight" in msg


def test_partial_loading_is_an_explicit_choice(tmp_path):
    path = _save(tmp_path / "w5.pth", _filled(Toy(width=5), 1.0))
    model = Toy(width=4)
    before = _snapshot(model)
    with captured_log() as log:
        OMGSegCheckpointer(model, allow_partial=True).load(path)
    assert any("Partial loading" in m and "3 with another shape" in m for m in log)
    assert torch.equal(model.mask_decoder.proj.weight, torch.ones(3, 2))  # matching: loaded
    assert torch.equal(model.pixel_decoder.bias, torch.ones(2))
    assert torch.equal(model.backbone.weight, before["backbone.weight"])  # other shape: kept


def test_a_checkpoint_of_another_architecture_is_refused_even_when_partial(tmp_path):
    m2f = {"sem_seg_head.predictor.query_feat.weight": torch.zeros(100, 256)}
    path = _save(tmp_path / "m2f.pth", m2f)
    for allow_partial in (False, True):
        with pytest.raises(CheckpointMismatchError, match="not an OMG-Seg checkpoint"):
            OMGSegCheckpointer(Toy(), allow_partial=allow_partial).load(path)


def test_matching_heuristics_never_rename_keys(tmp_path):
    """Detectron2's heuristics would load 'proj.*' into 'mask_decoder.proj.*'; we refuse."""
    state = _filled(Toy(), 7.0)
    state["proj.weight"] = state.pop("mask_decoder.proj.weight")
    state["proj.bias"] = state.pop("mask_decoder.proj.bias")
    path = _save(tmp_path / "h.pth", state, matching_heuristics=True, __author__="someone")
    old = Toy()
    DetectionCheckpointer(old).load(path)
    assert torch.equal(old.mask_decoder.proj.weight, torch.full((3, 2), 7.0))  # what D2 does
    with pytest.raises(CheckpointMismatchError, match="2 missing from the checkpoint"):
        OMGSegCheckpointer(Toy()).load(path)


def test_a_head_only_checkpoint_needs_the_backbone_from_openclip(tmp_path):
    state = {k: v for k, v in _filled(Toy(), 2.0).items() if not k.startswith("backbone.")}
    path = _save(tmp_path / "head.pth", state)
    model = Toy()
    backbone = model.backbone.weight.clone()
    with captured_log() as log:
        OMGSegCheckpointer(model, backbone_weights="laion2b_s29b_b131k_ft_soup").load(path)
    assert any("come from OpenCLIP (laion2b_s29b_b131k_ft_soup)" in m for m in log)
    assert torch.equal(model.pixel_decoder.weight, torch.full((2, 4), 2.0))
    assert torch.equal(model.backbone.weight, backbone)
    with pytest.raises(CheckpointMismatchError, match="MODEL.OMG.CLIP.PRETRAINED is empty"):
        OMGSegCheckpointer(Toy(), backbone_weights="").load(path)


def test_unreadable_files_are_errors_that_name_the_file(tmp_path):
    good = tmp_path / "good.pth"
    OMGSegCheckpointer(Toy(), str(tmp_path)).save("good")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    for path in (truncated, text, listing):
        with pytest.raises(UnreadableCheckpointError) as info:
            OMGSegCheckpointer(Toy()).load(str(path))
        assert str(path) in str(info.value)
    with pytest.raises(CheckpointNotFoundError, match="nope.pth does not exist"):
        OMGSegCheckpointer(Toy()).load(str(tmp_path / "nope.pth"))


def test_an_unconverted_official_head_gets_a_hint(tmp_path):
    path = tmp_path / "omg_seg_convl.pth"
    torch.save(official_state_dict("L"), path)
    with pytest.raises(CheckpointMismatchError, match="convert_omgseg_official.py"):
        OMGSegCheckpointer(Toy()).load(str(path))


def test_built_from_config():
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.OUTPUT_DIR = "/some/where"
    cfg.MODEL.OMG.ALLOW_PARTIAL_WEIGHTS = True
    checkpointer = OMGSegCheckpointer(cfg, Toy())
    assert checkpointer.save_dir == "/some/where" and checkpointer.allow_partial
    assert checkpointer.backbone_weights == "laion2b_s29b_b131k_ft_soup"
    assert get_cfg().MODEL.WEIGHTS == "" and not add_omgseg_config(get_cfg())  # keys only added


class _Unpicklable:
    def state_dict(self):
        return {"fn": lambda: 0}  # torch.save cannot pickle a lambda


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    model = Toy()
    checkpointer = OMGSegCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000001", iteration=1)
    before = (tmp_path / "model_0000001.pth").read_bytes()
    checkpointer.add_checkpointable("broken", _Unpicklable())
    with pytest.raises((AttributeError, pickle.PicklingError)):  # "cannot pickle a lambda"
        checkpointer.save("model_0000001", iteration=2)
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]


_KILL_CHILD = """
import sys, torch
from torch import nn
from omgseg.checkpoint import OMGSegCheckpointer
model = nn.Module()
model.big = nn.Parameter(torch.ones({numel}))
checkpointer = OMGSegCheckpointer(model, sys.argv[1])
checkpointer.save("model_0000001", iteration=1)
print("saved", flush=True)
model.big.data.fill_(2.0)
checkpointer.save("model_0000002", iteration=2)
print("saved again", flush=True)
"""


def test_kill_9_while_saving_leaves_no_partial_checkpoint_and_resume_uses_the_previous(tmp_path):
    numel = 64 * 1024 * 1024  # 256 MB: the save takes long enough to be killed in the middle
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_CHILD.format(numel=numel), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "saved"
        first_size = (out / "model_0000001.pth").stat().st_size
        victim, deadline = None, time.time() + 120
        while victim is None and proc.poll() is None and time.time() < deadline:
            for entry in os.scandir(out):
                being_written = entry.name.endswith(".partial") or entry.name == "model_0000002.pth"
                if being_written and entry.stat().st_size > (1 << 20):
                    victim = entry.name
            time.sleep(0.0005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert victim is not None, "never saw the second checkpoint being written"
    files = sorted(os.listdir(out))
    assert "model_0000002.pth" not in files, files
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    partial = [f for f in files if f.endswith(".partial")]
    assert len(partial) == 1 and (out / partial[0]).stat().st_size < first_size

    model = nn.Module()
    model.big = nn.Parameter(torch.zeros(numel))
    with captured_log() as log:
        extra = OMGSegCheckpointer(model, str(out)).resume_or_load("", resume=True)
    assert extra["iteration"] == 1 and float(model.big[0]) == 1.0
    assert any("killed before it finished" in m for m in log)
    assert sorted(os.listdir(out)) == ["last_checkpoint", "model_0000001.pth"]
    for name in os.listdir(out):  # 256 MB: do not leave it in pytest's kept temp folders
        os.remove(out / name)


def _periodic_folder(tmp_path, corrupt=("model_0000003.pth",), last="model_0000003.pth"):
    for it in (1, 2, 3):
        model = Toy()
        model.load_state_dict(_filled(model, float(it)))
        OMGSegCheckpointer(model, str(tmp_path)).save(f"model_{it:07d}", iteration=it)
    for name in corrupt:
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 3])
    (tmp_path / "last_checkpoint").write_text(last)


def test_resume_falls_back_from_a_corrupt_last_checkpoint(tmp_path):
    _periodic_folder(tmp_path)
    model = Toy()
    with captured_log() as log:
        extra = OMGSegCheckpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 2
    assert torch.equal(model.pixel_decoder.bias, torch.full((2,), 2.0))
    assert any(
        "Resumed from" in m and "model_0000002.pth" in m and "model_0000003.pth" in m for m in log
    )


def test_resume_skips_every_unreadable_one_and_a_missing_one(tmp_path):
    _periodic_folder(tmp_path, corrupt=("model_0000002.pth",), last="model_0000009.pth")
    (tmp_path / "model_0000003.pth").write_bytes(b"")
    model = Toy()
    extra = OMGSegCheckpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 1
    (tmp_path / "model_0000001.pth").write_bytes(b"x")
    with pytest.raises(UnreadableCheckpointError, match="no readable checkpoint"):
        OMGSegCheckpointer(Toy(), str(tmp_path)).resume_or_load("", resume=True)


def test_resume_does_not_hide_a_checkpoint_of_another_model(tmp_path):
    _periodic_folder(tmp_path, corrupt=())
    with pytest.raises(CheckpointMismatchError):
        OMGSegCheckpointer(Toy(width=6), str(tmp_path)).resume_or_load("", resume=True)
