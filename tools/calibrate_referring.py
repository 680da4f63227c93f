#!/usr/bin/env python
"""Calibrate ``MODEL.OMG.PROMPT.REFERRING_THRESHOLD`` for a trained model on a panoptic dataset.

Every non-crowd segment of an image is encoded as a mask prompt (``PromptPredictor.
encode_region``); on every other image, the semantic queries the panoptic rule keeps and whose
mask matches a ground-truth segment (IoU > 0.5) are the targets, "same kind" when that segment has
the reference's class. The similarity cut with the best F1 over all pairs is printed
(``omgseg.modeling.prompts.best_f1_threshold``), with precision / recall at a few cuts.

    .venv/bin/python tools/calibrate_referring.py --config-file configs/omg_tiny_synthetic.yaml \\
        --dataset omg_shapes_val_panoptic MODEL.WEIGHTS output/demo/model_final.pth
"""
import argparse
import sys

import numpy as np
import torch
from PIL import Image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--dataset", required=True, help="a registered panoptic dataset")
    parser.add_argument("--max-images", type=int, default=50)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)

    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog

    from omgseg import add_omgseg_config
    from omgseg.data.dataset_mappers.targets import load_frame_targets
    from omgseg.inference import PromptPredictor
    from omgseg.modeling.postprocessing import panoptic_selection
    from omgseg.modeling.prompts import (
        best_f1_threshold,
        output_mask_probs,
        query_class_embeddings,
    )

    cfg = get_cfg()
    add_omgseg_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts + ["DATASETS.TEST", f"('{args.dataset}',)"])
    predictor = PromptPredictor(cfg, input_format="RGB")
    model = predictor.model
    text = model.text_embeddings(model.default_vocabulary.names)
    images = []
    for record in DatasetCatalog.get(args.dataset)[: args.max_images]:
        image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        gt = load_frame_targets(record, image.shape[:2], "panoptic")
        masks = gt.to_masks()
        if not len(masks):
            continue
        predictor.set_image(image, "RGB")
        references = predictor.encode_region(masks=masks).embeddings
        memory = predictor._memory
        with torch.inference_mode():
            out = model.mask_decoder(None, None, 1, text, return_aux_outputs=False,
                                     memory=memory)
            emb = query_class_embeddings(model.mask_decoder, out, memory.mask_features)[0]
            keep = panoptic_selection(out["pred_logits"][0],
                                      model.object_mask_threshold).query_ids
            probs = output_mask_probs(out["pred_masks"][0, keep, 0], predictor._padded_size,
                                      predictor._input_size, predictor._original_size)
        pred = (probs > 0.5).numpy()
        targets = []
        for k, q in enumerate(keep.tolist()):
            ious = [(pred[k] & m).sum() / max((pred[k] | m).sum(), 1) for m in masks]
            j = int(np.argmax(ious))
            if ious[j] > 0.5:
                targets.append((emb[q].clone(), int(gt.classes[j])))
        images.append((references.clone(), gt.classes.copy(), targets))
    sims, same = [], []
    for a, (refs, classes, _) in enumerate(images):
        for b, (_, _, targets) in enumerate(images):
            if a != b:
                for e, c in targets:
                    sims.extend((refs @ e).tolist())
                    same.extend(int(c) == int(x) for x in classes)
    sims_t, same_t = torch.tensor(sims), torch.tensor(same, dtype=torch.bool)
    threshold, f1 = best_f1_threshold(sims_t, same_t)
    print(f"{len(sims)} pairs, {int(same_t.sum())} of the same class; F1-best threshold "
          f"{threshold:.3f} (F1 {f1:.3f})")
    for cut in (0.5, 0.6, 0.7, 0.8, 0.9):
        kept = sims_t >= cut
        tp = int((kept & same_t).sum())
        print(f"  >= {cut}: precision {tp / max(int(kept.sum()), 1):.3f}, recall "
              f"{tp / max(int(same_t.sum()), 1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
