"""Run by ``test_resume_determinism.py`` in a subprocess (not a test module):

    python resume_run.py OUTPUT_DIR MAX_ITER KILL_AFTER RESUME

trains the tiny config (images, prompts and a video set; SEED 7, a checkpoint every 2
iterations) to MAX_ITER; KILL_AFTER >= 0 sends SIGKILL to itself right after the step of that
iteration and its checkpoint; RESUME 1 resumes from OUTPUT_DIR like ``train_net.py --resume``.
"""
import os
import signal
import sys

from conftest import make_tiny_cfg
from detectron2.engine import HookBase
from detectron2.utils.env import seed_all_rng

from omgseg.engine import Trainer

TRAIN_SETS = ("omg_shapes_train_panoptic", "omg_shapes_train_prompt", "omg_shapes_video_train_vps")


class KillAfter(HookBase):
    """SIGKILL (no clean-up, like a crash or an OOM kill) after the hooks of ``iteration``."""

    def __init__(self, iteration: int):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


def main(output_dir: str, max_iter: int, kill_after: int, resume: bool) -> None:
    cfg = make_tiny_cfg(output_dir, **{
        "DATASETS.TRAIN": TRAIN_SETS, "SOLVER.MAX_ITER": max_iter,
        "SOLVER.CHECKPOINT_PERIOD": 2, "SOLVER.STEPS": (3,), "SOLVER.WARMUP_ITERS": 2,
        "DATALOADER.ASPECT_RATIO_GROUPING": False, "SEED": 7, "DATASETS.TEST": (),
    })
    cfg.freeze()
    seed_all_rng(cfg.SEED)  # what train_net.py's default_setup does
    trainer = Trainer(cfg)
    if kill_after >= 0:
        trainer.register_hooks([KillAfter(kill_after)])  # after the periodic checkpointer
    trainer.resume_or_load(resume=resume)
    trainer.train()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1")
