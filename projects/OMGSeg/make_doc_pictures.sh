#!/usr/bin/env bash
# The per-task pictures of the README (docs/images/), drawn by projects/OMGSeg/demo.py with the
# make-demo checkpoint (output/demo/model_final.pth) on OMG-Shapes val data. Run `make demo` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=docs/images
W=(--config-file output/demo/demo_config.yaml --opts MODEL.WEIGHTS output/demo/model_final.pth)
IMG=datasets/omg_shapes/images/val/000000.jpg
VID=datasets/omg_shapes/davis/JPEGImages/480p/vid_0016
ANN=datasets/omg_shapes/davis/Annotations/480p/vid_0016/00000.png
mkdir -p "$OUT"
for task in panoptic instance semantic; do
  "$PY" projects/OMGSeg/demo.py --input "$IMG" --task "$task" --output "$OUT/image_$task.png" "${W[@]}"
done
"$PY" projects/OMGSeg/demo.py --input "$IMG" --task prompt --points "40,110;180,130" \
  --boxes "90,160,185,250" --output "$OUT/prompts.png" "${W[@]}"
"$PY" projects/OMGSeg/demo.py --input datasets/omg_shapes/images/val/000001.jpg --task prompt \
  --reference-image "$IMG" --points "40,110" --output "$OUT/referring.png" "${W[@]}"
for task in panoptic instance; do
  "$PY" projects/OMGSeg/demo.py --video-input "$VID" --task "$task" --strip-frames 4 \
    --output "$OUT/video_$task.jpg" "${W[@]}"
done
"$PY" projects/OMGSeg/demo.py --video-input "$VID" --task vos --mask "$ANN" --strip-frames 4 \
  --output "$OUT/video_vos.jpg" "${W[@]}"
"$PY" projects/OMGSeg/demo.py --video-input "$VID" --task vos --points "139,117;71,147" \
  --strip-frames 4 --output "$OUT/video_vos_click.jpg" "${W[@]}"
