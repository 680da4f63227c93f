"""tools/compare_single_task.py without training: the runs' datasets, the scaled schedule, the
comparison table, and the output folders it refuses."""
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT

TOOLS = os.path.join(REPO_ROOT, "tools")
SCRIPT = os.path.join(TOOLS, "compare_single_task.py")


def _python(code):
    """Run ``code`` with tools/ as the working folder (so ``import compare_single_task`` finds
    the script as a user's ``python tools/...`` would) and return its JSON answer."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=TOOLS, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_runs_schedule_and_table():
    out = _python("""
import json, argparse
import omgseg  # noqa
import compare_single_task as c
base = c.load_base_config(argparse.Namespace(
    config_file=c.parse_args([]).config_file, opts=[], max_iter=500, seed=0))
runs = {r: c.run_config(base, r, "/x") for r in c.RUNS}
rows = c.comparison_rows(
    {"joint": {"omg_shapes_val_panoptic": {"panoptic_seg": {"PQ": 12.0}},
               "omg_shapes_val_prompt": {"prompt": {"mIoU_point": 40.0}}},
     "images-only": {"panoptic_seg": {"PQ": 10.0}}},
    {"joint": ["omg_shapes_val_panoptic", "omg_shapes_val_prompt"],
     "images-only": ["omg_shapes_val_panoptic"]})
print(json.dumps({
    "schedule": [base.SOLVER.MAX_ITER, list(base.SOLVER.STEPS), base.TEST.EVAL_PERIOD,
                 base.SOLVER.CHECKPOINT_PERIOD, base.SOLVER.IMS_PER_BATCH],
    "tiny": c.scaled_schedule(base, 2)[:4],
    "train": {r: list(cfg.DATASETS.TRAIN) for r, cfg in runs.items()},
    "test": {r: list(cfg.DATASETS.TEST) for r, cfg in runs.items()},
    "factors": {r: [p[0] for p in cfg.DATASETS.TRAIN_REPEAT_FACTOR] for r, cfg in runs.items()},
    "out": {r: cfg.OUTPUT_DIR for r, cfg in runs.items()},
    "table": c.comparison_table(rows, list(c.RUNS)),
}))
""")
    # 1500 -> 500 iterations: steps, evaluation and checkpoints scaled by 1/3; batch unchanged
    assert out["schedule"] == [500, [433], 167, 167, 4]
    assert out["tiny"] == ["SOLVER.MAX_ITER", 2, "SOLVER.STEPS", [1]]  # steps stay inside
    videos = ["omg_shapes_video_train_vps", "omg_shapes_video_train_ytvis",
              "omg_shapes_video_train_davis"]
    assert out["train"] == {
        "joint": ["omg_shapes_train_panoptic", "omg_shapes_train_prompt"] + videos,
        "images-only": ["omg_shapes_train_panoptic"],
        "videos-only": videos,
        "prompts-only": ["omg_shapes_train_prompt"],
    }
    assert out["test"]["images-only"] == ["omg_shapes_val_panoptic"]
    assert out["test"]["videos-only"] == ["omg_shapes_video_val_vps",
                                          "omg_shapes_video_val_ytvis",
                                          "omg_shapes_video_val_davis"]
    assert out["test"]["prompts-only"] == ["omg_shapes_val_prompt",
                                           "omg_shapes_video_val_prompt_vos_point",
                                           "omg_shapes_video_val_prompt_vos_scribble"]
    assert len(out["test"]["joint"]) == 7
    assert out["factors"]["videos-only"] == videos and out["factors"]["images-only"] == []
    assert out["out"]["joint"] == "/x/joint"
    lines = out["table"].splitlines()
    assert [h.strip() for h in lines[0].split("|")[3:7]] == [
        "joint", "images-only", "videos-only", "prompts-only"]
    pq = next(line for line in lines if "PQ" in line)
    assert [c.strip() for c in pq.split("|")[3:7]] == ["12.0", "10.0", "-", "-"]


def _refused(output_dir, *extra):
    return subprocess.run([sys.executable, SCRIPT, "--output-dir", str(output_dir), *extra],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_refuses_folders_it_did_not_write(tmp_path):
    foreign = tmp_path / "someone"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    proc = _refused(foreign)
    assert proc.returncode != 0 and "was not written by this tool" in proc.stderr
    assert sorted(os.listdir(foreign)) == ["notes.txt"]

    proc = _refused(os.path.join(REPO_ROOT, "output", "demo", "sub"))
    assert proc.returncode != 0 and "is the demo's output" in proc.stderr

    proc = _refused(tmp_path / "new", "--runs", "joint,audio-only")
    assert proc.returncode != 0 and "unknown runs ['audio-only']" in proc.stderr
    assert not (tmp_path / "new").exists()
