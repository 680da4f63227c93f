"""Training end to end on CPU: loss decreases, evaluation runs, --resume continues, DDP (gloo)."""
import os

import torch
from detectron2.engine import launch

from conftest import make_tiny_cfg
from omgseg.engine import Trainer


def test_tiny_training_loss_decreases_then_evaluates(synthetic_root, tmp_path):
    cfg = make_tiny_cfg(
        str(tmp_path),
        **{"SOLVER.MAX_ITER": 40, "SOLVER.BASE_LR": 0.001, "SOLVER.IMS_PER_BATCH": 2},
    )
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    history = trainer.storage.history("total_loss").values()
    assert len(history) == 40
    first = sum(v for v, _ in history[:8]) / 8
    last = sum(v for v, _ in history[-8:]) / 8
    assert last < 0.8 * first, (first, last)
    results = Trainer.test(cfg, trainer.model)
    for key in ("panoptic_seg", "segm", "sem_seg"):
        assert key in results, results.keys()
    assert 0.0 <= results["panoptic_seg"]["PQ"] <= 100.0
    assert 0.0 <= results["sem_seg"]["mIoU"] <= 100.0


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
