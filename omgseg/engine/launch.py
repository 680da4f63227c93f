"""``launch``: Detectron2's ``launch`` whose worker processes end cleanly.

With more than one process, a worker that returns from its main function goes through the
interpreter's teardown while torch.distributed's C++ threads (store / process-group helpers) may
still be alive; the C++ runtime then aborts the finished worker now and then ("terminate called
without an active exception", SIGABRT), and ``launch`` reports a failed run after all the work
was done. Here every worker, once its main function has returned, waits for the others, closes the
process groups, flushes its output and leaves with ``os._exit(0)``, skipping that teardown. An
exception in the main function still propagates (non-zero exit, reported by ``launch``).
"""
import os
import sys
from typing import Any, Callable, Sequence

from detectron2.engine import launch as _d2_launch
from detectron2.utils import comm

__all__ = ["launch"]


def _run_then_exit(main_func: Callable, args: Sequence[Any]) -> None:
    """The worker body: ``main_func(*args)``, then a clean exit of the process."""
    import torch.distributed as dist

    main_func(*args)
    comm.synchronize()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def launch(
    main_func: Callable,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = None,
    args: Sequence[Any] = (),
    **kwargs,
) -> Any:
    """Detectron2's ``launch`` with the same arguments; ``main_func`` must be importable (a
    module-level function) as for Detectron2. One process: ``main_func(*args)``'s result."""
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        return main_func(*args)
    return _d2_launch(_run_then_exit, num_gpus_per_machine, num_machines=num_machines,
                      machine_rank=machine_rank, dist_url=dist_url,
                      args=(main_func, tuple(args)), **kwargs)
