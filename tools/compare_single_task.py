#!/usr/bin/env python
"""Joint vs. single-task training of the tiny OMG-Seg model, at the same budget (not `make demo`).

Trains the model of ``--config-file`` (default: configs/omg_tiny_synthetic.yaml) four times with
the same MAX_ITER, batch size and schedule:

* ``joint``: every training set of the config (images, prompts and videos together);
* ``images-only``: the panoptic image set(s);
* ``videos-only``: the video sets (VPS, VIS, VOS);
* ``prompts-only``: the prompt (COCO-SAM mode) set(s);

then evaluates each run on the test sets of the tasks it was trained on and prints one table:
rows = metrics, columns = runs, "-" where a run did not train that task. The table is also written
as ``comparison.md`` and ``comparison.json`` in ``--output-dir``.

A training set's task follows from its metadata ``evaluator_type`` (``coco_panoptic_seg`` ->
images, ``coco_sam`` -> prompts, ``vps`` / ``ytvis`` / ``davis`` -> videos); a test set's task
likewise, except that prompt-driven VOS (``davis`` with a ``vos_prompt``) needs prompts.

``--max-iter N`` scales SOLVER.STEPS, TEST.EVAL_PERIOD and SOLVER.CHECKPOINT_PERIOD by
N / MAX_ITER (default N = the config's MAX_ITER). Each run trains in ``<output-dir>/<run>``; a run
whose final model exists with the same config is reused (``--retrain`` trains again). The tool
writes only inside ``--output-dir`` (default output/single_task), refuses a folder it did not
create (no ``.compare_single_task`` stamp in it) and never writes under output/demo.

    python tools/compare_single_task.py --max-iter 500
"""
import argparse
import json
import os
import time

# tools/ is this script's folder, so Python finds the demo driver next to it; only its public
# functions are used (the training call, the table rows, the metric list).
import run_demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP = ".compare_single_task"
RUNS = ("joint", "images-only", "videos-only", "prompts-only")
# Task trained by a training set / needed by a test set, by metadata evaluator_type.
TASK_OF_EVALUATOR = {
    "coco_panoptic_seg": "images",
    "coco": "images",
    "sem_seg": "images",
    "coco_sam": "prompts",
    "vps": "videos",
    "ytvis": "videos",
    "davis": "videos",
}
# The tasks each run keeps (joint: all the config lists).
RUN_TASKS = {
    "joint": ("images", "videos", "prompts"),
    "images-only": ("images",),
    "videos-only": ("videos",),
    "prompts-only": ("prompts",),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file", default=os.path.join(REPO, "configs", "omg_tiny_synthetic.yaml")
    )
    parser.add_argument("--max-iter", type=int, default=0,
                        help="iterations of every run (default: the config's SOLVER.MAX_ITER)")
    parser.add_argument("--output-dir", default=os.path.join(REPO, "output", "single_task"))
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"comma-separated subset of {', '.join(RUNS)}")
    parser.add_argument("--seed", type=int, default=0, help="SEED of every run (same data order)")
    parser.add_argument("--retrain", action="store_true",
                        help="train even if a run's final model exists with the same config")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- output folder
def claim_output_dir(path: str) -> str:
    """Create ``path`` (or accept one this tool created) and return it absolute.

    Refuses output/demo (and anything inside it) and an existing non-empty folder without this
    tool's stamp file: the tool never overwrites what it did not write.
    """
    path = os.path.abspath(path)
    demo = os.path.join(REPO, "output", "demo")
    if os.path.commonpath([path, demo]) == demo or path == REPO:
        raise SystemExit(f"compare_single_task.py: error: --output-dir {path} is the demo's "
                         "output (or the repository); choose another folder")
    if os.path.isfile(path):
        raise SystemExit(f"compare_single_task.py: error: --output-dir {path} is a file")
    stamp = os.path.join(path, STAMP)
    if os.path.isdir(path) and os.listdir(path) and not os.path.isfile(stamp):
        raise SystemExit(f"compare_single_task.py: error: {path} exists and was not written by "
                         f"this tool (no {STAMP} in it); choose an empty or new --output-dir")
    os.makedirs(path, exist_ok=True)
    if not os.path.isfile(stamp):
        with open(stamp, "w") as f:
            f.write("written by tools/compare_single_task.py\n")
    return path


# ---------------------------------------------------------------------------- run configs
def dataset_task(name: str) -> str:
    """``images`` / ``videos`` / ``prompts``: the task a dataset trains or evaluates."""
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(name)
    if meta.get("vos_prompt", ""):
        return "prompts"  # prompt-driven VOS: a click / stroke on frame 0, then mask prompts
    kind = meta.get("evaluator_type", None)
    if kind not in TASK_OF_EVALUATOR:
        raise ValueError(f"Dataset '{name}': evaluator_type {kind!r} has no task in "
                         f"TASK_OF_EVALUATOR ({sorted(TASK_OF_EVALUATOR)})")
    return TASK_OF_EVALUATOR[kind]


def scaled_schedule(cfg, max_iter: int) -> list:
    """``KEY VALUE`` overrides setting MAX_ITER and scaling STEPS / EVAL_PERIOD /
    CHECKPOINT_PERIOD by ``max_iter / cfg.SOLVER.MAX_ITER`` (at least 1 iteration each)."""
    factor = max_iter / cfg.SOLVER.MAX_ITER

    def scale(value):
        return max(1, round(value * factor)) if value > 0 else value

    # Detectron2 wants every LR step strictly inside the run.
    steps = sorted({min(scale(s), max_iter - 1) for s in cfg.SOLVER.STEPS} - {0})
    return [
        "SOLVER.MAX_ITER", max_iter,
        "SOLVER.STEPS", tuple(steps),
        "TEST.EVAL_PERIOD", scale(cfg.TEST.EVAL_PERIOD),
        "SOLVER.CHECKPOINT_PERIOD", scale(cfg.SOLVER.CHECKPOINT_PERIOD),
    ]


def run_config(base, run: str, output_dir: str):
    """The frozen config of one run: the training / test sets of its tasks, its own OUTPUT_DIR,
    and only the repeat factors of the training sets it keeps."""
    tasks = RUN_TASKS[run]
    train = tuple(n for n in base.DATASETS.TRAIN if dataset_task(n) in tasks)
    test = tuple(n for n in base.DATASETS.TEST if dataset_task(n) in tasks)
    if not train:
        raise ValueError(f"Run {run}: the config lists no training set for {tasks}")
    cfg = base.clone()
    cfg.DATASETS.TRAIN = train
    cfg.DATASETS.TEST = test
    cfg.DATASETS.TRAIN_REPEAT_FACTOR = [
        list(p) for p in base.DATASETS.TRAIN_REPEAT_FACTOR if p[0] in train
    ]
    cfg.OUTPUT_DIR = os.path.join(output_dir, run)
    cfg.freeze()
    return cfg


# ---------------------------------------------------------------------------- table
def comparison_rows(results_by_run: dict, test_names_by_run: dict):
    """``[(task, metric, {run: value})]`` in DEMO_METRICS order; a run without a value for a
    metric has no entry."""
    values = {}
    for run, results in results_by_run.items():
        for task, _, label, value in run_demo.metric_rows(results, test_names_by_run[run]):
            values.setdefault((task, label), {})[run] = value
    order = {(task, label): i for i, (task, _, _, label, _) in enumerate(run_demo.DEMO_METRICS)}
    return [(task, label, v) for (task, label), v in sorted(values.items(),
                                                             key=lambda kv: order[kv[0]])]


def comparison_table(rows, runs) -> str:
    """GitHub-markdown table: one row per metric, one column per run, "-" where not trained."""
    from tabulate import tabulate

    body = [[task, label] + [f"{v[r]:.1f}" if r in v else "-" for r in runs]
            for task, label, v in rows]
    return tabulate(body, headers=["task", "metric", *runs], tablefmt="github",
                    disable_numparse=True)


# ---------------------------------------------------------------------------- main
def load_base_config(args):
    from detectron2.config import get_cfg

    from omgseg import add_omgseg_config

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    max_iter = args.max_iter or cfg.SOLVER.MAX_ITER
    cfg.merge_from_list(scaled_schedule(cfg, max_iter))
    cfg.SEED = args.seed
    cfg.MODEL.OMG.TEST.VIDEO.PROGRESS_BAR = False
    return cfg


def train_and_evaluate(cfg, retrain: bool):
    """(training seconds or None when reused, evaluation results) of one run."""
    from omgseg.checkpoint import OMGSegCheckpointer
    from omgseg.engine import Trainer

    seconds, results = run_demo.train(cfg, retrain)
    if not results:  # reused, or no evaluation after the last iteration (EVAL_PERIOD 0)
        model = Trainer.build_model(cfg)
        OMGSegCheckpointer(cfg, model).load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
        results = Trainer.test(cfg, model)
    return seconds, results


def main(argv=None):
    args = parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        raise SystemExit(f"compare_single_task.py: error: unknown runs {unknown}; choose from "
                         f"{', '.join(RUNS)}")
    output_dir = claim_output_dir(args.output_dir)
    os.environ.setdefault("DETECTRON2_DATASETS", os.path.join(REPO, "datasets"))
    run_demo.generate_data()

    from detectron2.utils.logger import setup_logger

    import omgseg  # noqa: F401  (registers datasets and model)

    setup_logger(output=output_dir)
    setup_logger(output=output_dir, name="omgseg")
    base = load_base_config(args)
    base.MODEL.OMG.CLIP.TEXT_CACHE_DIR = os.path.join(output_dir, "text_cache")

    results_by_run, tests_by_run, summary = {}, {}, {}
    for run in runs:
        cfg = run_config(base, run, output_dir)
        print(f"[compare] {run}: training on {', '.join(cfg.DATASETS.TRAIN)} for "
              f"{cfg.SOLVER.MAX_ITER} iterations; testing on {', '.join(cfg.DATASETS.TEST)}",
              flush=True)
        start = time.time()
        seconds, results = train_and_evaluate(cfg, args.retrain)
        results_by_run[run] = results
        tests_by_run[run] = list(cfg.DATASETS.TEST)
        summary[run] = {
            "train_datasets": list(cfg.DATASETS.TRAIN),
            "test_datasets": list(cfg.DATASETS.TEST),
            "train_seconds": seconds,
            "total_seconds": time.time() - start,
            "output_dir": cfg.OUTPUT_DIR,
        }
        print(f"[compare] {run}: done in {(time.time() - start) / 60:.1f} min", flush=True)

    rows = comparison_rows(results_by_run, tests_by_run)
    table = comparison_table(rows, runs)
    header = (f"Joint vs. single-task training: {os.path.relpath(args.config_file, REPO)}, "
              f"{base.SOLVER.MAX_ITER} iterations, batch {base.SOLVER.IMS_PER_BATCH}, "
              f"steps {list(base.SOLVER.STEPS)}, seed {base.SEED} (\"-\": task not trained)")
    with open(os.path.join(output_dir, "comparison.md"), "w") as f:
        f.write(f"{header}\n\n{table}\n")
    with open(os.path.join(output_dir, "comparison.json"), "w") as f:
        json.dump({
            "config_file": args.config_file,
            "max_iter": base.SOLVER.MAX_ITER,
            "ims_per_batch": base.SOLVER.IMS_PER_BATCH,
            "steps": list(base.SOLVER.STEPS),
            "seed": base.SEED,
            "runs": summary,
            "metrics": [{"task": t, "metric": m, "values": v} for t, m, v in rows],
            "results": results_by_run,
        }, f, indent=2, default=float)
    print()
    print(header)
    print(table)
    return rows


if __name__ == "__main__":
    main()
