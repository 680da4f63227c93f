"""OMG-Seg configuration keys.

``add_omgseg_config(cfg)`` adds every key the plugin reads. The defaults are the values of the
official ConvNeXt-L release (lxtGH/OMG-Seg,
``omg_convl_vlm_fix_12e_ov_coco_vid_yt19_vip_city_cocopansam``) so that a leaf YAML only has to
name what differs from the paper.
"""
from detectron2.config import CfgNode as CN

__all__ = ["add_omgseg_config"]


def add_omgseg_config(cfg: CN) -> None:
    """Add the OMG-Seg keys (``MODEL.OMG``, ``INPUT.*``, ``SOLVER.*``) to a Detectron2 config."""
    _add_model_config(cfg)
    _add_input_config(cfg)
    _add_solver_config(cfg)


def _add_model_config(cfg: CN) -> None:
    cfg.MODEL.META_ARCHITECTURE = "OMGSeg"
    cfg.MODEL.BACKBONE.NAME = "OpenCLIPBackbone"
    # ImageNet statistics in RGB order, as the official model uses (not the CLIP statistics).
    cfg.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
    cfg.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]

    cfg.MODEL.OMG = CN()

    # ---- frozen OpenCLIP backbone and text tower -------------------------------------------
    cfg.MODEL.OMG.CLIP = CN()
    # OpenCLIP model name (open_clip.list_models() or a tiny config registered by omgseg).
    cfg.MODEL.OMG.CLIP.MODEL_NAME = "convnext_large_d_320"
    # OpenCLIP pretrained tag, a local checkpoint path, or "" for random initialisation.
    cfg.MODEL.OMG.CLIP.PRETRAINED = "laion2b_s29b_b131k_ft_soup"
    # Freeze the visual tower (eval mode, no grad). The official OV model freezes it.
    cfg.MODEL.OMG.CLIP.FREEZE = True
    # Where text embeddings are cached, one file per (CLIP model, pretrained, vocabulary).
    cfg.MODEL.OMG.CLIP.TEXT_CACHE_DIR = "~/.cache/omgseg/text_embeddings"
    # Fixed logit scale of the cosine classifier: exp(4.6052) = 100 (temperature 0.01).
    cfg.MODEL.OMG.CLIP.LOGIT_SCALE = 100.0
    # Number of class-name prompts encoded per text-tower forward (bounds memory).
    cfg.MODEL.OMG.CLIP.TEXT_BATCH_SIZE = 128

    # ---- weights -------------------------------------------------------------------------------
    # Load MODEL.WEIGHTS even when some tensors are missing, unexpected or of another shape
    # (warn and load the rest). False refuses such a checkpoint, with counts and names of each.
    # A head-only checkpoint with a non-empty MODEL.OMG.CLIP.PRETRAINED is complete either way.
    cfg.MODEL.OMG.ALLOW_PARTIAL_WEIGHTS = False

    # ---- pixel decoder (multi-scale deformable attention encoder + FPN) --------------------
    # Name in PIXEL_DECODER_REGISTRY.
    cfg.MODEL.OMG.PIXEL_DECODER_NAME = "MSDeformAttnPixelDecoder"
    # Backbone features the pixel decoder reads (finest first).
    cfg.MODEL.OMG.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    # Features that go through the deformable encoder; the rest get FPN steps.
    cfg.MODEL.OMG.DEFORMABLE_IN_FEATURES = ["res3", "res4", "res5"]
    # Channel width of the pixel decoder.
    cfg.MODEL.OMG.CONVS_DIM = 256
    # Channel width of the per-pixel mask features.
    cfg.MODEL.OMG.MASK_DIM = 256
    # Normalisation of the pixel-decoder convolutions.
    cfg.MODEL.OMG.NORM = "GN"
    # Stride of the mask features.
    cfg.MODEL.OMG.COMMON_STRIDE = 4
    # Deformable encoder layers / heads / sampling points per head and level / FFN width.
    cfg.MODEL.OMG.ENC_LAYERS = 6
    cfg.MODEL.OMG.ENC_HEADS = 8
    cfg.MODEL.OMG.ENC_POINTS = 4
    cfg.MODEL.OMG.ENC_DIM_FEEDFORWARD = 1024
    # Deformable-attention core: "auto" (a fused GPU kernel when one is importable and the input
    # is on CUDA, else the plain-PyTorch core) or "pytorch" (always the plain-PyTorch core).
    cfg.MODEL.OMG.DEFORM_ATTN_IMPL = "auto"

    # ---- shared multi-task mask decoder ------------------------------------------------------
    # Name in TRANSFORMER_DECODER_REGISTRY.
    cfg.MODEL.OMG.TRANSFORMER_DECODER_NAME = "OMGMaskDecoder"
    # Width of queries and attention.
    cfg.MODEL.OMG.HIDDEN_DIM = 256
    # Number of learned semantic queries.
    cfg.MODEL.OMG.NUM_OBJECT_QUERIES = 300
    # Attention heads / FFN width / number of decoder layers (3 rounds over strides 32, 16, 8).
    cfg.MODEL.OMG.NHEADS = 8
    cfg.MODEL.OMG.DIM_FEEDFORWARD = 2048
    cfg.MODEL.OMG.DEC_LAYERS = 9
    # Post-norm (False) as in Mask2Former and the official model.
    cfg.MODEL.OMG.PRE_NORM = False
    # Dropout inside the decoder (0.0 in every official config).
    cfg.MODEL.OMG.DROPOUT = 0.0
    # Attention-mask threshold: a query attends where its previous mask probability >= this.
    cfg.MODEL.OMG.ATTN_MASK_THRESHOLD = 0.5

    # ---- criterion and matcher -------------------------------------------------------------
    # Supervise the prediction before layer 1 and after every layer.
    cfg.MODEL.OMG.DEEP_SUPERVISION = True
    # Cross-entropy weight of the void ("no object") class.
    cfg.MODEL.OMG.NO_OBJECT_WEIGHT = 0.1
    # Loss weights (also the matching-cost weights).
    cfg.MODEL.OMG.CLASS_WEIGHT = 2.0
    cfg.MODEL.OMG.MASK_WEIGHT = 5.0
    cfg.MODEL.OMG.DICE_WEIGHT = 5.0
    # Sigmoid focal loss (gamma 2, alpha 0.25) on the objectness logit.
    cfg.MODEL.OMG.OBJECTNESS_WEIGHT = 2.0
    # Points for matching costs and point-sampled mask losses (112 * 112).
    cfg.MODEL.OMG.TRAIN_NUM_POINTS = 12544
    # PointRend importance sampling of the mask-loss points.
    cfg.MODEL.OMG.OVERSAMPLE_RATIO = 3.0
    cfg.MODEL.OMG.IMPORTANCE_SAMPLE_RATIO = 0.75

    # ---- open-vocabulary fusion with the frozen CLIP head (inference only) ------------------
    cfg.MODEL.OMG.OV = CN()
    # Fuse the learned class scores with mask-pooled frozen-CLIP scores (omgseg/modeling/
    # open_vocab.py) for images, videos (per clip) and prompted masks. Off by default: the
    # official release turns it on only for its ADE evaluation. Switchable at run time
    # (model.ov_enabled) without rebuilding the model.
    cfg.MODEL.OMG.OV.ENABLED = False
    # Exponent a of the CLIP probability, p = p_learned^(1-a) * p_clip^a, for classes seen in
    # training (a synonym in the DATASETS.TRAIN vocabularies); model.ov_alpha at run time.
    cfg.MODEL.OMG.OV.ALPHA = 0.4
    # The same exponent for classes unseen in training; model.ov_beta at run time.
    cfg.MODEL.OMG.OV.BETA = 0.8

    # ---- inference -------------------------------------------------------------------------
    cfg.MODEL.OMG.TEST = CN()
    # Which Detectron2 outputs one forward produces.
    cfg.MODEL.OMG.TEST.SEMANTIC_ON = True
    cfg.MODEL.OMG.TEST.INSTANCE_ON = True
    cfg.MODEL.OMG.TEST.PANOPTIC_ON = True
    # Panoptic: keep non-void queries whose class score is above this (official eval: 0.0).
    cfg.MODEL.OMG.TEST.OBJECT_MASK_THRESHOLD = 0.0
    # Panoptic: drop a segment whose visible / full (mask >= 0.5) area is below this.
    cfg.MODEL.OMG.TEST.OVERLAP_THRESHOLD = 0.8
    # Instance: number of (query, class) pairs kept per image.
    cfg.MODEL.OMG.TEST.DETECTIONS_PER_IMAGE = 100
    # Semantic: resize masks to the output size before the per-pixel sum.
    cfg.MODEL.OMG.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE = True

    # ---- video inference (clip by clip, omgseg/modeling/video) ----------------------------
    cfg.MODEL.OMG.TEST.VIDEO = CN()
    # Frames per clip; 0 = the official rule by evaluator_type (YT-VIS / DAVIS: 5 for videos
    # over 15 frames else 3; VIPSeg: 2 over 15 else 3; other videos: 3; see video/clips.py).
    cfg.MODEL.OMG.TEST.VIDEO.CLIP_LENGTH = 0
    # VOS: the queries of highest video-level objectness matched to the first-frame objects.
    cfg.MODEL.OMG.TEST.VIDEO.NUM_VOS_PROPOSALS = 25
    # Parent folder of each video's temporary on-disk mask store ("" = the system default).
    cfg.MODEL.OMG.TEST.VIDEO.TMP_DIR = ""
    # Show a tqdm progress bar over the frames of each video (on a terminal; not in log files).
    cfg.MODEL.OMG.TEST.VIDEO.PROGRESS_BAR = True

    # ---- prompts: location queries (omgseg/modeling/prompts) -------------------------------
    cfg.MODEL.OMG.PROMPT = CN()
    # pb_embedding row of point prompts (0 = box, 1 = point). Ours trains row 1; the released
    # official weights were trained with row 0 for every prompt (points as +-3 px boxes): set 0
    # to prompt them.
    cfg.MODEL.OMG.PROMPT.POINT_TYPE = 1
    # Training box jitter U(-1, 1) * NOISE_SCALE * NOISE_FACTOR * (w/2, h/2, w, h) on normalised
    # (cx, cy, w, h): official prepare_for_dn_mo noise_scale 0.4 ...
    cfg.MODEL.OMG.PROMPT.NOISE_SCALE = 0.4
    # ... and its factor 0.01 (applied to every prompt in the official code).
    cfg.MODEL.OMG.PROMPT.NOISE_FACTOR = 0.01
    # Most prompts one predict() call accepts (bounds the P x H x W output masks).
    cfg.MODEL.OMG.PROMPT.MAX_PROMPTS = 100
    # Referring regions: minimum cosine similarity of a target query's class embedding to the
    # reference region's. No official value; 0.9 = the F1-best cut (0.94, rounded down for
    # recall) of referring_selection on OMG-Shapes val pairs with a tiny model (PQ 32); not
    # tuned on real data: calibrate per model with prompts/referring.py best_f1_threshold.
    cfg.MODEL.OMG.PROMPT.REFERRING_THRESHOLD = 0.9
    # Also add the mask features pooled inside the box of point / box prompts to their query
    # content, as for scribbles / polygons / masks (not official: the released model encodes a
    # point or box by position only, which a small model learns only after long training).
    cfg.MODEL.OMG.PROMPT.POOL_BOX_FEATURES = False


def _add_input_config(cfg: CN) -> None:
    # The CLIP towers take RGB.
    cfg.INPUT.FORMAT = "RGB"
    # Mapper used by the trainer (see omgseg.data.build.MAPPERS): "omg_multi_task" maps image
    # records to pseudo-videos and video records to clips, so DATASETS.TRAIN may mix both.
    cfg.INPUT.DATASET_MAPPER_NAME = "omg_multi_task"
    # Frames per training clip; an image becomes a pseudo-video of this many frames.
    cfg.INPUT.NUM_FRAMES = 2
    # How a video's training clip is drawn: "interval" (official OMG-Seg VideoClipSample: T
    # frames at a fixed stride, uniform start) or "range" (Mask2Former: a uniform reference
    # frame plus frames within +-SAMPLING_FRAME_RANGE of it).
    cfg.INPUT.SAMPLING_FRAME_MODE = "interval"
    # Stride between the frames of a clip in "interval" mode (official: 2).
    cfg.INPUT.SAMPLING_FRAME_INTERVAL = 2
    # Half-width of the window around the reference frame in "range" mode (Mask2Former: 20).
    cfg.INPUT.SAMPLING_FRAME_RANGE = 20
    # Shuffle the order of the drawn frames (Mask2Former SAMPLING_FRAME_SHUFFLE: off).
    cfg.INPUT.SAMPLING_FRAME_SHUFFLE = False
    # Large-scale jitter as mmdet RandomResize(keep_ratio=True) + RandomCrop: draw r, fit the
    # image's long / short edge into r * (max, min) of CROP_SIZE, then crop CROP_SIZE per frame.
    cfg.INPUT.LSJ = CN()
    # Crop size [H, W]; also the resize target at r = 1 (official: 1280 x 736, W x H).
    cfg.INPUT.LSJ.CROP_SIZE = [736, 1280]
    # Range of r (official ratio_range (0.8, 2.0)).
    cfg.INPUT.LSJ.MIN_SCALE = 0.8
    cfg.INPUT.LSJ.MAX_SCALE = 2.0
    # Horizontal flip probability (shared by all frames of a clip).
    cfg.INPUT.LSJ.FLIP_PROB = 0.5
    # Images (and batches) are padded to a multiple of this.
    cfg.INPUT.SIZE_DIVISIBILITY = 32
    # Drop ground-truth segments smaller than this many pixels after augmentation.
    cfg.INPUT.MIN_MASK_AREA = 0
    # Prompt (COCO-SAM mode) samples, official coco_panoptic_lsj_sam pipeline + preprocessor.
    cfg.INPUT.PROMPT = CN()
    # Prompts per training image; entities repeat when fewer (official num_proposals 20).
    cfg.INPUT.PROMPT.NUM_PROMPTS = 20
    # Entities with fewer pixels after augmentation get no prompt (official min_gt_mask_area).
    cfg.INPUT.PROMPT.MIN_MASK_AREA = 32
    # Scale-jitter ratio range of prompt samples (official COCO-SAM ratio_range (0.1, 2.0)).
    cfg.INPUT.PROMPT.MIN_SCALE = 0.1
    cfg.INPUT.PROMPT.MAX_SCALE = 2.0
    # Sampling weights of the prompt kinds (point, box, scribble, polygon, mask), per prompt;
    # official: points only (1, 0, 0, 0, 0), encoded as boxes (MODEL.OMG.PROMPT.POINT_TYPE 0).
    cfg.INPUT.PROMPT.KIND_WEIGHTS = [0.4, 0.3, 0.1, 0.1, 0.1]
    # Prompt modes of the interactive mIoU evaluation, one prompt per segment each.
    cfg.INPUT.PROMPT.EVAL_MODES = ["point", "box", "scribble"]
    # Fraction of the training images RandomSubsetTrainingSampler keeps (Detectron2 reads this
    # key but its defaults lack it; 1.0 = all, as every official run).
    if not hasattr(cfg.DATALOADER, "RANDOM_SUBSET_RATIO"):
        cfg.DATALOADER.RANDOM_SUBSET_RATIO = 1.0
    # Per-dataset repeat factors for DATALOADER.SAMPLER_TRAIN "WeightedTrainingSampler": pairs
    # [dataset name, factor] (unlisted datasets: 1), e.g. the official joint run repeats
    # YouTube-VIS 2019 x30, VIPSeg x15, Cityscapes x15 against COCO x1 (newer Detectron2 has it).
    if not hasattr(cfg.DATASETS, "TRAIN_REPEAT_FACTOR"):
        cfg.DATASETS.TRAIN_REPEAT_FACTOR = []


def _add_solver_config(cfg: CN) -> None:
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    cfg.SOLVER.BASE_LR = 1e-4
    cfg.SOLVER.WEIGHT_DECAY = 0.05
    # No weight decay on normalisation layers and on query / level embeddings.
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    # LR multiplier of the backbone when it is trained (MODEL.OMG.CLIP.FREEZE False).
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    # Full-model L2 gradient clipping at 0.01.
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 0.01
    cfg.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
    cfg.SOLVER.WARMUP_ITERS = 500
    cfg.SOLVER.WARMUP_FACTOR = 0.001
