"""tools/convert_omgseg_official.py as a user runs it, on a ConvNeXt-L head built from the
official key list (tests/fixtures/omgseg-official-head-keys.tsv)."""
import os
import subprocess
import sys

import torch

from conftest import REPO_ROOT

CONVERTER = os.path.join(REPO_ROOT, "tools", "convert_omgseg_official.py")
TSV = os.path.join(REPO_ROOT, "tests", "fixtures", "omgseg-official-head-keys.tsv")


def _official_convl(path):
    """A stand-in for omg_seg_convl.pth: every official name and shape, random values."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    with open(TSV) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, shape = line.rstrip("\n").split("\t")
                state[name] = torch.randn([int(s) for s in shape.split("x")], generator=gen)
    torch.save(state, path)
    return state


def _convert(*args, cwd):
    return subprocess.run(
        [sys.executable, CONVERTER, *map(str, args)], capture_output=True, text=True,
        timeout=300, cwd=str(cwd),
    )


def test_convl_converts_with_a_clean_report(tmp_path):
    official = _official_convl(tmp_path / "omg_seg_convl.pth")
    out = tmp_path / "omg_seg_convl_d2.pth"
    proc = _convert(tmp_path / "omg_seg_convl.pth", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "310 tensors, 21,010,369 parameters, prefix 'panoptic_head.'" in proc.stdout
    assert "variant: convnext_large (build the model with configs/omg_convnext_large.yaml)" in (
        proc.stdout)
    assert "310 matched, 0 missing, 0 unexpected, 0 with another shape" in proc.stdout
    assert "FutureWarning" not in proc.stderr
    converted = torch.load(out, weights_only=True)["model"]
    assert torch.equal(
        converted["mask_decoder.transformer_cross_attention_layers.0.attn.in_proj_weight"],
        official["panoptic_head.transformer_decoder.layers.0.cross_attn.attn.in_proj_weight"],
    )

    # an existing OUT is kept without --force ...
    before = out.read_bytes()
    proc = _convert(tmp_path / "omg_seg_convl.pth", out, cwd=tmp_path)
    assert proc.returncode == 1 and "pass --force" in proc.stderr
    assert out.read_bytes() == before
    # ... and replaced with it
    proc = _convert(tmp_path / "omg_seg_convl.pth", out, "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_file_that_is_not_an_omgseg_head_is_refused(tmp_path):
    bad = tmp_path / "model_final_m2f.pth"
    torch.save({"model": {"sem_seg_head.predictor.query_feat.weight": torch.zeros(100, 256)}}, bad)
    proc = _convert(bad, tmp_path / "out.pth", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"{bad} is not an official OMG-Seg head" in proc.stderr and "Mask2Former" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.pth").exists()
