#!/usr/bin/env python
"""Side-by-side speed of OMG-Seg's heads and Mask2Former's official ones, plus a forward split.

Part 1 (heads): the project's ``MSDeformAttnPixelDecoder`` and ``OMGMaskDecoder`` against
Mask2Former's official ``MSDeformAttnPixelDecoder`` and ``MultiScaleMaskedTransformerDecoder``
on the same random ConvNeXt-L-shaped features (res2..res5: 192/384/768/1536 channels), batch 1,
eval mode, no grad, same widths (256, 6 encoder layers, 9 decoder layers, 300 queries, 8 heads;
the reference has 133 learned classes, ours a [133, 1, D] text-embedding tensor). Runs are
interleaved and the median of ``--repeats`` is reported as ms and as ratios ours / reference.

Part 2 (forward split): the project's full image forward (ConvNeXt-L visual tower with random
weights built by open_clip, nothing downloaded) split into backbone / pixel decoder / mask decoder
/ post-processing (semantic + instance + panoptic), in ms and %. Post-processing is then timed
with and without the semantic output, with the random-init class scores (every query non-void,
so all 300 take part in panoptic) and with all but 30 queries made void (as for a trained
model), with outputs at the input size and at an original image size (``--original-size``).

The reference is Mask2Former's own source from the package index, an OPTIONAL benchmark-only
dependency (never needed at run time):

    .venv/bin/pip install --no-build-isolation --no-deps maskformer2==0.1
    .venv/bin/python tools/benchmark_heads.py                      # both parts, both sizes
    .venv/bin/python tools/benchmark_heads.py --sizes 512x512 --skip-forward
    .venv/bin/python tools/benchmark_heads.py --threads 1   # steadier on a shared machine

Its package ``__init__`` needs Detectron2's compiled ops, so the two module files are loaded
directly from their paths under stand-in parent packages; its deformable attention then runs its
own PyTorch core (``ms_deform_attn_core_pytorch``), as it does on any machine without the
compiled ``MultiScaleDeformableAttention`` extension. Timings are wall-clock on a shared machine:
read the printed load average, and compare ratios rather than absolute times.
"""
import argparse
import importlib
import importlib.util
import os
import statistics
import sys
import time
import types
from typing import Callable, Dict, List, Sequence, Tuple

import torch

CONVNEXT_L_CHANNELS = {"res2": 192, "res3": 384, "res4": 768, "res5": 1536}
STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
NUM_CLASSES = 133
TEXT_DIM = 768
_REF_PACKAGE = "_mask2former_reference"


def load_mask2former_reference() -> Tuple[type, type]:
    """Mask2Former's official ``(MSDeformAttnPixelDecoder, MultiScaleMaskedTransformerDecoder)``.

    The files are imported from the installed ``maskformer2`` distribution under stand-in parent
    packages (whose ``__init__`` files are not run), so their relative imports resolve to the
    package's own files; the ``ops`` packages get the two names the modules import from them.
    """
    spec = importlib.util.find_spec("mask2former")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "Mask2Former's source is not installed (an optional benchmark dependency):\n"
            "    .venv/bin/pip install --no-build-isolation --no-deps maskformer2==0.1"
        )
    modeling = os.path.join(list(spec.submodule_search_locations)[0], "modeling")
    packages = {
        "": modeling,
        ".transformer_decoder": os.path.join(modeling, "transformer_decoder"),
        ".pixel_decoder": os.path.join(modeling, "pixel_decoder"),
        ".pixel_decoder.ops": os.path.join(modeling, "pixel_decoder", "ops"),
        ".pixel_decoder.ops.functions": os.path.join(modeling, "pixel_decoder", "ops", "functions"),
        ".pixel_decoder.ops.modules": os.path.join(modeling, "pixel_decoder", "ops", "modules"),
    }
    for suffix, path in packages.items():
        name = _REF_PACKAGE + suffix
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [path]
            sys.modules[name] = pkg

    def load(suffix: str) -> types.ModuleType:
        return importlib.import_module(_REF_PACKAGE + suffix)

    functions = sys.modules[_REF_PACKAGE + ".pixel_decoder.ops.functions"]
    func_module = load(".pixel_decoder.ops.functions.ms_deform_attn_func")
    functions.MSDeformAttnFunction = func_module.MSDeformAttnFunction
    modules = sys.modules[_REF_PACKAGE + ".pixel_decoder.ops.modules"]
    modules.MSDeformAttn = load(".pixel_decoder.ops.modules.ms_deform_attn").MSDeformAttn
    pixel = load(".pixel_decoder.msdeformattn")
    decoder = load(".transformer_decoder.mask2former_transformer_decoder")
    return pixel.MSDeformAttnPixelDecoder, decoder.MultiScaleMaskedTransformerDecoder


def _shapes():
    from detectron2.layers import ShapeSpec

    return {k: ShapeSpec(channels=c, stride=STRIDES[k]) for k, c in CONVNEXT_L_CHANNELS.items()}


def build_heads(ref_pixel_cls: type, ref_decoder_cls: type) -> Dict[str, torch.nn.Module]:
    """Both implementations at the official widths, eval mode."""
    from omgseg.modeling.pixel_decoder.msdeformattn import MSDeformAttnPixelDecoder
    from omgseg.modeling.transformer_decoder.omg_decoder import OMGMaskDecoder

    common = dict(
        conv_dim=256, mask_dim=256, norm="GN", transformer_in_features=["res3", "res4", "res5"],
        common_stride=4, transformer_dropout=0.0, transformer_nheads=8,
        transformer_dim_feedforward=1024, transformer_enc_layers=6,
    )
    torch.manual_seed(0)
    heads = {
        "ours_pixel": MSDeformAttnPixelDecoder(input_shape=_shapes(), **common),
        "ref_pixel": ref_pixel_cls(input_shape=_shapes(), **common),
        "ours_decoder": OMGMaskDecoder(
            in_channels=256, hidden_dim=256, num_queries=300, nheads=8, dim_feedforward=2048,
            dec_layers=9, pre_norm=False, mask_dim=256, text_dim=TEXT_DIM, logit_scale=100.0,
            attn_mask_threshold=0.5,
        ),
        "ref_decoder": ref_decoder_cls(
            in_channels=256, mask_classification=True, num_classes=NUM_CLASSES, hidden_dim=256,
            num_queries=300, nheads=8, dim_feedforward=2048, dec_layers=9, pre_norm=False,
            mask_dim=256, enforce_input_project=False,
        ),
    }
    return {k: m.eval() for k, m in heads.items()}


def random_features(height: int, width: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """ConvNeXt-L-shaped backbone features of a ``height`` x ``width`` input, batch 1."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(1, c, -(-height // STRIDES[k]), -(-width // STRIDES[k]), generator=g)
        for k, c in CONVNEXT_L_CHANNELS.items()
    }


def interleaved_medians(
    fns: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> Dict[str, Tuple[float, float]]:
    """Median (wall-clock ms, process CPU ms) of each function; one call of each per round.

    CPU time counts this process's threads only, so it is less disturbed by other processes on
    a shared machine than wall-clock time (cache and memory-bandwidth contention remain).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall: Dict[str, List[float]] = {k: [] for k in fns}
    cpu: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[k].append((time.perf_counter() - t0) * 1000.0)
            cpu[k].append((time.process_time() - c0) * 1000.0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def bench_heads(
    size: Tuple[int, int], heads: Dict[str, torch.nn.Module], repeats: int
) -> Dict[str, Tuple[float, float]]:
    """(wall ms, CPU ms) of ours_pixel / ref_pixel / ours_decoder / ref_decoder at ``size``."""
    feats = random_features(*size)
    g = torch.Generator().manual_seed(1)
    h4, w4 = feats["res2"].shape[-2:]
    mask_features = torch.randn(1, 256, h4, w4, generator=g)
    memory = [
        torch.randn(1, 256, *feats[k].shape[-2:], generator=g) for k in ("res5", "res4", "res3")
    ]
    text = torch.randn(NUM_CLASSES, 1, TEXT_DIM, generator=g)
    text = torch.nn.functional.normalize(text, dim=-1)

    fns = {
        "ours_pixel": lambda: heads["ours_pixel"].forward_features(feats),
        "ref_pixel": lambda: heads["ref_pixel"].forward_features(feats),
        "ours_decoder": lambda: heads["ours_decoder"](memory, mask_features, 1, text),
        "ref_decoder": lambda: heads["ref_decoder"](memory, mask_features),
    }
    with torch.no_grad():
        return interleaved_medians(fns, repeats)


def _trained_like(outputs: Dict, non_void: int) -> Dict:
    """``outputs`` with class logits pushed below void for all but ``non_void`` queries: a
    random-init classifier makes every query non-void (all 300 kept by panoptic), a trained one
    about 30 per image."""
    logits = outputs["pred_logits"].clone()
    logits[:, non_void:, :-1] -= 200.0
    return dict(outputs, pred_logits=logits)


def forward_split(
    size: Tuple[int, int], output_size: Tuple[int, int], repeats: int
) -> Tuple[Dict[str, float], Dict[str, Tuple[float, float]]]:
    """Median ms of backbone / pixel decoder / mask decoder / post-processing of one image (output
    at the input size), and of post-processing variants: outputs requested, queries kept, output
    at the input size or at ``output_size`` (the original size of an image that the test resize
    enlarged, as for COCO's 640-pixel images)."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from omgseg import add_omgseg_config
    from omgseg.modeling.vocabulary import Vocabulary

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(os.path.join(root, "configs", "omg_convnext_large.yaml"))
    cfg.merge_from_list(["MODEL.OMG.CLIP.PRETRAINED", "", "MODEL.DEVICE", "cpu",
                         "DATASETS.TEST", "()", "DATASETS.TRAIN", "()"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    names = [f"class {i}" for i in range(NUM_CLASSES)]
    vocab = Vocabulary(names, [i < 80 for i in range(NUM_CLASSES)])
    g = torch.Generator().manual_seed(2)
    text = torch.nn.functional.normalize(
        torch.randn(NUM_CLASSES, 1, model.backbone.text_dim, generator=g), dim=-1
    )
    height, width = size
    inputs = [{"image": torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g)}]

    stages: Dict[str, List[float]] = {
        k: [] for k in ("backbone", "pixel decoder", "mask decoder", "post-processing")
    }
    with torch.no_grad():
        for rep in range(repeats + 1):
            t0 = time.perf_counter()
            images, num_frames = model._frames(inputs)
            features = model.backbone(images.tensor)
            t1 = time.perf_counter()
            mask_features, multi_scale = model.pixel_decoder.forward_features(features)
            t2 = time.perf_counter()
            outputs = model.mask_decoder(multi_scale, mask_features, num_frames, text)
            t3 = time.perf_counter()
            model.inference(inputs, images, num_frames, outputs, vocab)
            t4 = time.perf_counter()
            if rep == 0:
                continue  # warm-up
            for k, (a, b) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                stages[k].append((b - a) * 1000.0)

        def post(outs: Dict, semantic: bool, out_size: Tuple[int, int]) -> Callable[[], object]:
            sized = [dict(inputs[0], height=out_size[0], width=out_size[1])]

            def run():
                model.semantic_on = semantic
                try:
                    return model.inference(sized, images, num_frames, outs, vocab)
                finally:
                    model.semantic_on = True

            return run

        trained = _trained_like(outputs, 30)
        fns = {}
        for out_size in (size, output_size):
            for kept, outs in (("300", outputs), ("30", trained)):
                for semantic in (True, False):
                    what = "semantic + panoptic + instance" if semantic else "panoptic + instance"
                    key = f"{what}, {kept} non-void queries, output {out_size[0]} x {out_size[1]}"
                    fns[key] = post(outs, semantic, out_size)
        variants = interleaved_medians(fns, repeats)
    return {k: statistics.median(v) for k, v in stages.items()}, variants


def _parse_size(text: str) -> Tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"


def _ratio_cells(t: Dict[str, Tuple[float, float]], clock: int) -> List[str]:
    pairs = (
        (t["ours_pixel"][clock], t["ref_pixel"][clock]),
        (t["ours_decoder"][clock], t["ref_decoder"][clock]),
        (t["ours_pixel"][clock] + t["ours_decoder"][clock],
         t["ref_pixel"][clock] + t["ref_decoder"][clock]),
    )
    return [f"{ours:.0f} / {ref:.0f} ms = **{ours / ref:.2f}x**" for ours, ref in pairs]


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", type=_parse_size, default=[(800, 1216), (512, 512)],
                        help="input sizes HxW of the heads comparison")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per size (median)")
    parser.add_argument("--forward-size", type=_parse_size, default=(800, 1216))
    parser.add_argument("--forward-repeats", type=int, default=3)
    parser.add_argument("--original-size", type=_parse_size, default=(421, 640),
                        help="output size of the post-processing variants (a COCO image)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--skip-heads", action="store_true")
    parser.add_argument("--skip-forward", action="store_true")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {_load()}")
    if not args.skip_heads:
        heads = build_heads(*load_mask2former_reference())
        header = "| input | pixel decoder | mask decoder | both heads |\n|---|---|---|---|"
        rows = {0: [], 1: []}
        for size in args.sizes:
            t = bench_heads(size, heads, args.repeats)
            for clock in rows:
                cells = " | ".join(_ratio_cells(t, clock))
                rows[clock].append(f"| {size[0]} x {size[1]} | {cells} |")
        for clock, name in ((0, "wall-clock"), (1, "process CPU time")):
            print(f"\nheads, batch 1, eval, no grad: median {name} ms, ours / Mask2Former")
            print(header)
            print("\n".join(rows[clock]))
        print(_load())
    if not args.skip_forward:
        stages, variants = forward_split(
            args.forward_size, args.original_size, args.forward_repeats
        )
        total = sum(stages.values())
        h, w = args.forward_size
        print(f"\nfull forward, ConvNeXt-L (random weights), {h} x {w}, CPU: median wall ms")
        print("| stage | ms | % |")
        print("|---|---|---|")
        for k, v in stages.items():
            print(f"| {k} | {v:.0f} | {100 * v / total:.1f} |")
        print(f"| total | {total:.0f} | 100 |")
        forward = total - stages["post-processing"]
        print("\npost-processing variants: median wall ms (% of backbone + heads)")
        print("| outputs, non-void queries | ms | % |")
        print("|---|---|---|")
        for k, (wall, _) in variants.items():
            print(f"| {k} | {wall:.0f} | {100 * wall / forward:.1f} |")
        print(_load())


if __name__ == "__main__":
    main()
