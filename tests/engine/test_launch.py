"""omgseg.engine.launch: Detectron2's launch whose workers end cleanly."""
import os
import tempfile

import pytest
from torch.multiprocessing.spawn import ProcessRaisedException

from omgseg.engine import launch


def _write_rank(out_dir):
    from detectron2.utils import comm

    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.txt"), "w") as f:
        f.write(str(comm.get_world_size()))


def _fail_on_rank_1(out_dir):
    from detectron2.utils import comm

    if comm.get_rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    _write_rank(out_dir)


def test_one_process_returns_the_main_result():
    assert launch(lambda a, b: a + b, 1, args=(2, 3)) == 5


def test_two_workers_run_and_exit_cleanly(tmp_path):
    for _ in range(3):  # the teardown abort was intermittent: a clean exit every time
        launch(_write_rank, 2, dist_url="auto", args=(str(tmp_path),))
        assert sorted(os.listdir(tmp_path)) == ["rank0.txt", "rank1.txt"]
        assert (tmp_path / "rank1.txt").read_text() == "2"
        for name in os.listdir(tmp_path):
            os.remove(tmp_path / name)


def test_a_failing_worker_is_reported(tmp_path, monkeypatch):
    # torch's spawn leaves the failed worker's traceback file in the temp folder: keep it in ours.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "spawn"))
    (tmp_path / "spawn").mkdir()
    with pytest.raises(ProcessRaisedException, match="rank 1 fails on purpose"):
        launch(_fail_on_rank_1, 2, dist_url="auto", args=(str(tmp_path),))
