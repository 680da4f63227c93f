"""--resume after a SIGKILL continues to the same weights as an uninterrupted run; the resumable
training stream and the per-sample seeding it rests on."""
import os
import random
import signal
import subprocess
import sys

import numpy as np
import torch
from detectron2.data.samplers import TrainingSampler

from conftest import REPO_ROOT
from omgseg.data.build import ResumableSampler, SeededMapDataset

HELPER = os.path.join(REPO_ROOT, "tests", "engine", "resume_run.py")


def _run(output_dir, max_iter, kill_after=-1, resume=False):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(REPO_ROOT, "tests"), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, HELPER, str(output_dir), str(max_iter), str(kill_after),
         "1" if resume else "0"],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(output_dir),
    )


def _final_weights(folder):
    return torch.load(os.path.join(folder, "model_final.pth"), weights_only=True)


def _differences(a, b, where=""):
    """Paths at which two nested checkpoint structures differ (tensors compared exactly)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where} keys"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where} length"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}/{i}")]
    return [] if a == b else [where]


def test_resume_after_sigkill_reaches_the_same_weights(synthetic_root, tmp_path):
    """4 iterations straight vs. killed (SIGKILL) right after the checkpoint of iteration 1, then
    --resume to 4: the final weights, the optimizer (AdamW moments, steps), the LR scheduler and
    the random generators' states are bit-identical."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    proc = _run(straight, 4)
    assert proc.returncode == 0, proc.stderr[-3000:]

    proc = _run(killed, 4, kill_after=1)  # killed right after model_0000001.pth (2 iterations)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert (killed / "model_0000001.pth").exists() and not (killed / "model_final.pth").exists()
    proc = _run(killed, 4, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting training from iteration 2" in proc.stderr + proc.stdout

    a, b = _final_weights(straight), _final_weights(killed)
    assert a["iteration"] == b["iteration"] == 3
    assert a["omgseg_format_version"] == 1 and a["training_vocabulary"]["names"]
    changed = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert changed == [], f"{len(changed)} tensors differ, e.g. {changed[:3]}"
    assert _differences(a["trainer"]["_trainer"], b["trainer"]["_trainer"]) == []  # optimizer
    assert _differences(a["trainer"]["hooks"], b["trainer"]["hooks"]) == []  # LR scheduler
    assert _differences(a["rng"], b["rng"]) == []
    # the run did train: the weights moved away from those of the killed run's checkpoint
    first = torch.load(killed / "model_0000001.pth", weights_only=True)["model"]
    assert any(not torch.equal(first[k], a["model"][k]) for k in first)


def test_resumable_sampler_continues_the_stream():
    whole = ResumableSampler(TrainingSampler(10, seed=3), num_records=10)
    stream = iter(whole)
    expected = [next(stream) for _ in range(25)]
    assert [k // 10 for k in expected] == list(range(25))  # positions are numbered
    resumed = ResumableSampler(TrainingSampler(10, seed=3), num_records=10)
    resumed.start_at(17)
    stream = iter(resumed)
    assert [next(stream) for _ in range(8)] == expected[17:]


def _noisy_mapper(record):
    return {"id": record["id"], "py": random.random(), "np": float(np.random.rand()),
            "torch": float(torch.rand(()))}


def test_a_sample_is_mapped_the_same_whatever_ran_before():
    records = [{"id": i} for i in range(4)]
    data = SeededMapDataset(records, _noisy_mapper, seed=7)
    key = 5 * len(records) + 2  # record 2 at stream position 5
    first = data[key]
    before = random.random(), torch.rand(3)  # the global generators move on ...
    assert data[key] == first  # ... the sample does not
    assert first["id"] == 2
    assert data[6 * len(records) + 2] != first  # another position: other augmentation
    assert SeededMapDataset(records, _noisy_mapper, seed=8)[key] != first
    # the caller's generators are given back untouched
    state = random.getstate(), torch.get_rng_state()
    data[key]
    assert random.getstate() == state[0] and torch.equal(torch.get_rng_state(), state[1])
    assert before  # (used)


def test_a_record_the_mapper_refuses_is_replaced_reproducibly():
    records = [{"id": i} for i in range(6)]

    def picky(record):
        return None if record["id"] == 0 else _noisy_mapper(record)

    data = SeededMapDataset(records, picky, seed=1)
    out = data[3 * len(records) + 0]
    assert out["id"] != 0 and data[3 * len(records) + 0] == out
