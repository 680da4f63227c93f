"""Training end to end on CPU: a short run beats the untrained model on the val split, --resume
continues, DDP (gloo)."""
import os

import torch
from omgseg.engine import launch
from detectron2.utils.env import seed_all_rng

from conftest import make_tiny_cfg
from omgseg.engine import Trainer


def test_short_training_beats_the_untrained_model(synthetic_root, tmp_path):
    """200 iterations (~15 s on 2 CPU cores) lift PQ and mIoU on the synthetic val split well
    above the untrained model's. Over seeds 0-5 the gains were PQ +10.4..+21.4 and mIoU
    +7.2..+15.0 (untrained: PQ 0, mIoU <= 2.1)."""
    cfg = make_tiny_cfg(
        str(tmp_path),
        **{"SOLVER.MAX_ITER": 200, "SOLVER.BASE_LR": 0.002, "SOLVER.IMS_PER_BATCH": 2},
    )
    seed_all_rng(cfg.SEED)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    before = Trainer.test(cfg, trainer.model)
    trainer.train()
    history = trainer.storage.history("total_loss").values()
    assert len(history) == 200
    first = sum(v for v, _ in history[:20]) / 20
    last = sum(v for v, _ in history[-20:]) / 20
    assert last < 0.8 * first, (first, last)
    after = Trainer.test(cfg, trainer.model)
    for key in ("panoptic_seg", "segm", "sem_seg"):
        assert key in after, after.keys()
    gains = (after["panoptic_seg"]["PQ"] - before["panoptic_seg"]["PQ"],
             after["sem_seg"]["mIoU"] - before["sem_seg"]["mIoU"])
    assert gains[0] >= 5.0 and gains[1] >= 5.0, (before, after)


def test_resume_continues_from_saved_iteration(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(str(tmp_path), **{"SOLVER.MAX_ITER": 3, "SOLVER.CHECKPOINT_PERIOD": 3})
    first = Trainer(cfg)
    first.resume_or_load(resume=False)
    first.train()
    assert os.path.exists(tmp_path / "model_final.pth")
    saved = {k: v.clone() for k, v in first.model.state_dict().items()}

    cfg2 = make_tiny_cfg(str(tmp_path), **{"SOLVER.MAX_ITER": 5, "SOLVER.CHECKPOINT_PERIOD": 3})
    second = Trainer(cfg2)
    second.resume_or_load(resume=True)
    assert second.start_iter == 3  # iteration 2 was the last one run, training resumes at 3
    for k, v in second.model.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    second.train()
    # only the missing iterations 3 and 4 ran
    assert [it for _, it in second.storage.history("total_loss").values()] == [3, 4]


def _ddp_worker(output_dir):
    cfg = make_tiny_cfg(output_dir, **{"SOLVER.MAX_ITER": 2})
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    from detectron2.utils import comm

    model = trainer.model.module if hasattr(trainer.model, "module") else trainer.model
    assert comm.get_world_size() == 2
    rank = comm.get_rank()
    torch.save(model.state_dict(), os.path.join(output_dir, f"init{rank}.pth"))
    trainer.train()
    torch.save(model.state_dict(), os.path.join(output_dir, f"rank{rank}.pth"))


def test_two_process_gloo_ddp_step_keeps_ranks_identical(synthetic_root, tmp_path):
    launch(_ddp_worker, 2, num_machines=1, machine_rank=0, dist_url="auto", args=(str(tmp_path),))
    w0 = torch.load(tmp_path / "rank0.pth")
    w1 = torch.load(tmp_path / "rank1.pth")
    assert w0.keys() == w1.keys()
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0, msg=k)
    # both ranks started from rank 0's weights, and training changed them
    init0 = torch.load(tmp_path / "init0.pth")
    init1 = torch.load(tmp_path / "init1.pth")
    assert all(torch.equal(init0[k], init1[k]) for k in init0)
    changed = [k for k in w0 if not torch.equal(init0[k], w0[k])]
    assert len(changed) > len(w0) // 2
