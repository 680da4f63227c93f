"""Detectron2 ``DefaultTrainer`` specialised for OMG-Seg.

What differs from the default: records of every task (panoptic, instance, semantic, video)
are stamped with their registered name (each sample picks its vocabulary by it) and filtered /
weighted per dataset before Detectron2's loader builders get them, mappers and evaluators come
from tables, AdamW with OMG-Seg's parameter groups and full-model gradient clipping, DDP also
works on CPU (gloo), the config is checked before anything is built (``preflight``) and
checkpoints go through the strict, crash-safe ``OMGSegCheckpointer``.

Resuming is deterministic: checkpoints hold the random generators' states (``rng.RNGStates``),
and on ``--resume`` the training stream starts where the killed run stopped
(``omgseg.data.build.build_resumable_train_loader`` says under which conditions the batches are
then exactly those of an uninterrupted run).
"""
import logging
import weakref

import torch
from torch.nn.parallel import DistributedDataParallel

from detectron2.config import CfgNode, get_cfg
from detectron2.data import build_detection_test_loader
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..checkpoint import OMGSegCheckpointer
from ..config import add_omgseg_config
from ..data.build import (
    build_resumable_train_loader,
    build_test_mapper,
    build_train_mapper,
    check_dataset_files,
    get_omg_dataset_dicts,
)
from ..evaluation.build import build_evaluator
from ..solver.build import build_lr_scheduler, build_optimizer
from .preflight import check_config
from .rng import RNGStates

__all__ = ["Trainer", "setup_cfg"]


def setup_cfg(args, *, setup_env: bool = True) -> CfgNode:
    """Config from ``--config-file`` plus trailing ``KEY VALUE`` overrides, frozen.

    Raises ``ConfigError`` (before anything is written) for an OUTPUT_DIR that is a file, a CUDA
    device on a machine without one, or an unregistered dataset name.
    """
    cfg = get_cfg()
    add_omgseg_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_config(cfg, train=not getattr(args, "eval_only", False))
    if setup_env:
        default_setup(cfg, args)
        setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="omgseg")
    return cfg


def create_ddp_model(model: torch.nn.Module) -> torch.nn.Module:
    """DDP when world size > 1; device_ids only on GPU, so gloo on CPU works too."""
    if comm.get_world_size() == 1:
        return model
    device_ids = [comm.get_local_rank()] if next(model.parameters()).is_cuda else None
    # Prompt-only parameters receive no gradient in a semantic-only batch.
    return DistributedDataParallel(
        model, device_ids=device_ids, broadcast_buffers=False, find_unused_parameters=True
    )


class Trainer(DefaultTrainer):
    def __init__(self, cfg: CfgNode):
        # DefaultTrainer.__init__ with config checks, a CPU-capable DDP wrapper and the strict,
        # crash-safe OMGSegCheckpointer.
        check_config(cfg, train=True)
        super(DefaultTrainer, self).__init__()
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(
            model, data_loader, optimizer
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = OMGSegCheckpointer(
            cfg, model, trainer=weakref.proxy(self), rng=RNGStates()
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def resume_or_load(self, resume: bool = True):
        """``DefaultTrainer.resume_or_load``, then the training stream starts after the samples
        the resumed iterations consumed (``start_iter`` x the per-process batch)."""
        super().resume_or_load(resume=resume)
        sampler = getattr(self._trainer.data_loader, "resumable_sampler", None)
        if sampler is None:
            return
        per_process = self.cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
        sampler.start_at(self.start_iter * per_process)
        if self.start_iter:
            log = logging.getLogger(__name__)
            log.info(f"Resuming at iteration {self.start_iter}: the training stream skips the "
                     f"{self.start_iter * per_process} samples per process already used")
            if self.cfg.SEED < 0:
                log.warning("SEED < 0: the resumed run draws a new data order and new "
                            "augmentations; set SEED to resume deterministically")

    @classmethod
    def build_train_loader(cls, cfg):
        """Detectron2's batched training loader over the records (every task, name-stamped,
        ``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` applied per dataset), sampled by the
        ``DATALOADER.SAMPLER_TRAIN`` sampler seeded with ``SEED`` and mapped under a seed per
        stream position; the loader's ``resumable_sampler`` lets ``resume_or_load`` start the
        stream where a killed run stopped."""
        dataset = get_omg_dataset_dicts(
            cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        )
        loader, sampler = build_resumable_train_loader(cfg, dataset, build_train_mapper(cfg))
        loader.resumable_sampler = sampler
        return loader

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """Detectron2's ``build_detection_test_loader(cfg, dataset_name, ...)``: every image is
        kept, empty ones included; annotation files are checked first."""
        check_dataset_files(dataset_name)
        return build_detection_test_loader(
            cfg, dataset_name, mapper=build_test_mapper(cfg, dataset_name)
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        import os

        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)
