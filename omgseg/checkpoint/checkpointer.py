"""``OMGSegCheckpointer``: Detectron2's ``DetectionCheckpointer`` that cannot silently go wrong.

Differences from ``DetectionCheckpointer``:

* Loading is strict. A checkpoint whose tensors do not all fit the model (other shapes, missing,
  unexpected) is refused with counts and a few names of each, unless partial loading is allowed
  (``MODEL.OMG.ALLOW_PARTIAL_WEIGHTS``). Detectron2's name-matching heuristics are never applied:
  names must match exactly.
* A head-only checkpoint (no ``backbone.*`` tensor, e.g. the converted official weights) is
  complete when the backbone weights come from OpenCLIP (``MODEL.OMG.CLIP.PRETRAINED``).
* Files are read with ``torch.load(weights_only=True)``; a missing, truncated or non-torch file
  raises an error naming it.
* Saving writes a temporary file in the same folder and renames it; ``last_checkpoint`` is
  rewritten (atomically too) only after the rename, so a process killed while saving leaves the
  previous checkpoint in place.
* Saves hold the format version and the model's training vocabulary (``format.py``); loading
  migrates an unversioned file (logged in one line), refuses a newer format and a Detectron2
  Mask2Former checkpoint with a message saying what it is, and logs the training vocabulary.
* ``resume_or_load(resume=True)`` falls back from an unreadable last checkpoint to the newest
  readable one in the folder (by iteration) and says so in the log.
"""
import logging
import os
import re
from typing import Any, Dict, List, Optional
from urllib.parse import urlparse

from fvcore.common.checkpoint import _IncompatibleKeys

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import configurable
from detectron2.utils import comm

from ..utils.file_io import atomic_output
from .compare import compare_state_dicts
from .errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    UnreadableCheckpointError,
)
from .format import (
    FORMAT_VERSION,
    FORMAT_VERSION_KEY,
    TRAINING_VOCABULARY_KEY,
    checkpoint_format_version,
    format_training_vocabulary,
    migrate_state_dict,
    refuse_mask2former,
    training_vocabulary_of,
)
from .io import PARTIAL_SAVE_PATTERN, atomic_torch_save, read_checkpoint, state_dict_from
from .official_omgseg import looks_like_official_head

__all__ = ["OMGSegCheckpointer"]

logger = logging.getLogger(__name__)

_PERIODIC_NAME = re.compile(r"^model_(\d+)\.pth$")
_FINAL_NAME = "model_final.pth"


class OMGSegCheckpointer(DetectionCheckpointer):
    """Strict, crash-safe checkpointer for ``OMGSeg`` (see the module docstring).

    Build it from a config, ``OMGSegCheckpointer(cfg, model, **checkpointables)`` (``save_dir``
    defaults to ``cfg.OUTPUT_DIR``), or with explicit arguments.
    """

    @configurable
    def __init__(
        self,
        model,
        save_dir: str = "",
        *,
        allow_partial: bool = False,
        backbone_weights: str = "",
        save_to_disk: Optional[bool] = None,
        **checkpointables: Any,
    ):
        """
        Args:
            model, save_dir, save_to_disk, checkpointables: as in ``DetectionCheckpointer``.
            allow_partial: load the tensors that fit and only warn about the rest.
            backbone_weights: where the backbone weights come from when a checkpoint has none
                (``MODEL.OMG.CLIP.PRETRAINED``: an OpenCLIP tag or file); "" = nowhere.
        """
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.allow_partial = bool(allow_partial)
        self.backbone_weights = backbone_weights
        self._loading: Optional[str] = None

    @classmethod
    def from_config(cls, cfg, model, save_dir: Optional[str] = None, **checkpointables) -> Dict:
        return {
            "model": model,
            "save_dir": cfg.OUTPUT_DIR if save_dir is None else save_dir,
            "allow_partial": cfg.MODEL.OMG.ALLOW_PARTIAL_WEIGHTS,
            "backbone_weights": cfg.MODEL.OMG.CLIP.PRETRAINED,
            **checkpointables,
        }

    # ---- loading -------------------------------------------------------------------------------
    def load(self, path: str, *args, **kwargs) -> Dict[str, Any]:
        if path:
            parsed = urlparse(path)
            local = parsed._replace(query="").geturl()
            if parsed.scheme == "" and not os.path.isfile(local):
                read_checkpoint(local)  # raises CheckpointNotFoundError naming the path
        self._loading = path
        try:
            return super().load(path, *args, **kwargs)
        finally:
            self._loading = None
            # DetectionCheckpointer.load leaves this set when loading raises; the next load
            # (e.g. the resume fallback) asserts it is None.
            self._parsed_url_during_load = None

    def _load_file(self, filename: str) -> Dict[str, Any]:
        try:
            loaded = super()._load_file(filename)
        except CheckpointError:
            raise
        except Exception as e:  # .pkl / .pyth readers of Detectron2
            raise UnreadableCheckpointError(
                f"Cannot read checkpoint {filename}: {type(e).__name__}: {e}"
            ) from e
        loaded["model"] = state_dict_from(loaded.get("model"), filename)
        return loaded

    def _torch_load(self, f: str) -> Any:
        loaded = read_checkpoint(f)
        if not isinstance(loaded, dict):
            raise UnreadableCheckpointError(
                f"Checkpoint {f} holds a {type(loaded).__name__}, not a state dict of named tensors"
            )
        if "model" not in loaded and isinstance(loaded.get("state_dict"), dict):
            loaded = dict(loaded, model=loaded.pop("state_dict"))
        return loaded

    def _load_model(self, checkpoint: Dict[str, Any]) -> _IncompatibleKeys:
        path = self._loading or "the checkpoint"
        if checkpoint.pop("matching_heuristics", False):
            logger.warning(
                f"{path} asks for Detectron2's name-matching heuristics; OMG-Seg loads tensors "
                "by exact name only."
            )
        version = checkpoint_format_version(checkpoint, path)
        checkpoint.pop(FORMAT_VERSION_KEY, None)
        vocabulary = checkpoint.pop(TRAINING_VOCABULARY_KEY, None)
        state_dict = dict(checkpoint.pop("model"))
        if state_dict and all(k.startswith("module.") for k in state_dict):
            state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
        refuse_mask2former(path, state_dict)
        model_state = self.model.state_dict()
        migrations = migrate_state_dict(state_dict, model_state, version)
        if migrations:
            logger.warning(
                f"{path} has no format version (written before version {FORMAT_VERSION}); "
                f"migrated: {'; '.join(migrations)}."
            )
        if isinstance(vocabulary, dict) and vocabulary.get("names"):
            logger.info(
                f"{path} was trained on {format_training_vocabulary(vocabulary)} "
                "(omgseg.checkpoint.checkpoint_training_vocabulary reads it)"
            )

        diff = compare_state_dicts(state_dict, model_state)
        head_only = not any(k.startswith("backbone.") for k in state_dict)
        if head_only and self.backbone_weights and diff.matched:
            diff.missing = [k for k in diff.missing if not k.startswith("backbone.")]
        if not diff.matched or (not diff.exact and not self.allow_partial):
            message = self._mismatch_message(path, diff, state_dict, checkpoint)
            raise CheckpointMismatchError(message)
        if head_only and self.backbone_weights:
            logger.info(
                f"{path} holds no backbone tensors (head-only checkpoint): the backbone weights "
                f"come from OpenCLIP ({self.backbone_weights})."
            )
        if not diff.exact:
            logger.warning(
                f"Partial loading of {path} (MODEL.OMG.ALLOW_PARTIAL_WEIGHTS):\n{diff.summary()}"
            )
        self.model.load_state_dict({k: state_dict[k] for k in diff.matched}, strict=False)
        return _IncompatibleKeys(
            missing_keys=diff.missing,
            unexpected_keys=diff.unexpected,
            incorrect_shapes=diff.mismatched,
        )

    def _mismatch_message(self, path, diff, state_dict, checkpoint) -> str:
        lines = [f"{path} does not fit the model built from this config:", diff.summary()]
        if looks_like_official_head(state_dict):
            lines.append(
                "It is an official OMG-Seg head in its original layout: convert it first with "
                "`python tools/convert_omgseg_official.py IN OUT` and use OUT as MODEL.WEIGHTS."
            )
        info = checkpoint.get("omgseg")
        if isinstance(info, dict) and info.get("config_file"):
            lines.append(
                f"It was converted from the official {info.get('variant')} head; build the model "
                f"with {info['config_file']}."
            )
        head_only = not any(k.startswith("backbone.") for k in state_dict)
        if head_only and not self.backbone_weights and diff.matched:
            lines.append(
                "It holds no backbone weights and MODEL.OMG.CLIP.PRETRAINED is empty, so the "
                "backbone would stay random: set MODEL.OMG.CLIP.PRETRAINED to an OpenCLIP tag or "
                "a local OpenCLIP checkpoint file."
            )
        if diff.matched:
            lines.append(
                "Use weights and a config that describe the same model, or set "
                f"MODEL.OMG.ALLOW_PARTIAL_WEIGHTS True to load only the {len(diff.matched)} "
                "matching tensors."
            )
        else:
            lines.append("No tensor of it belongs to this model: it is not an OMG-Seg checkpoint.")
        return "\n".join(lines)

    # ---- saving --------------------------------------------------------------------------------
    def save(self, name: str, **kwargs: Any) -> None:
        """``Checkpointer.save`` written to a temporary file and renamed into place."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict(), FORMAT_VERSION_KEY: FORMAT_VERSION}
        vocabulary = training_vocabulary_of(self.model)
        if vocabulary is not None:
            data[TRAINING_VOCABULARY_KEY] = vocabulary
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        if os.path.basename(save_file) != basename:
            raise ValueError(f"Checkpoint name {name!r} must not contain a folder")
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_torch_save(data, save_file)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        with atomic_output(os.path.join(self.save_dir, "last_checkpoint")) as tmp:
            with open(tmp, "w") as f:
                f.write(last_filename_basename)

    # ---- resuming ------------------------------------------------------------------------------
    def resume_candidates(self) -> List[str]:
        """The file named in ``last_checkpoint``, then ``model_final.pth`` and ``model_*.pth`` of
        ``save_dir`` from the highest iteration down."""
        ranked = []
        for name in os.listdir(self.save_dir) if os.path.isdir(self.save_dir) else []:
            match = _PERIODIC_NAME.match(name)
            if name == _FINAL_NAME or match:
                ranked.append((float("inf") if match is None else int(match.group(1)), name))
        files = [os.path.join(self.save_dir, n) for _, n in sorted(ranked, reverse=True)]
        last = self.get_checkpoint_file()
        return [last] + [f for f in files if os.path.abspath(f) != os.path.abspath(last)]

    def remove_partial_saves(self) -> None:
        """Delete the temporary files of saves that were killed before their rename."""
        if not os.path.isdir(self.save_dir) or not comm.is_main_process():
            return
        for name in os.listdir(self.save_dir):
            if PARTIAL_SAVE_PATTERN.match(name):
                logger.warning(f"Removing {name}: a checkpoint save killed before it finished.")
                os.remove(os.path.join(self.save_dir, name))

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        """Resume from the newest readable checkpoint of ``save_dir``, else load ``path``."""
        if not (resume and self.has_checkpoint()):
            return self.load(path, checkpointables=[])
        self.remove_partial_saves()
        skipped = []
        for candidate in self.resume_candidates():
            try:
                result = self.load(candidate)
            except (CheckpointNotFoundError, UnreadableCheckpointError) as e:
                logger.warning(f"Cannot resume from {candidate}: {e}")
                skipped.append(os.path.basename(candidate))
                continue
            if skipped:
                logger.warning(
                    f"Resumed from {candidate}, the newest readable checkpoint in {self.save_dir} "
                    f"(skipped unreadable: {', '.join(skipped)})."
                )
            return result
        raise UnreadableCheckpointError(
            f"--resume: no readable checkpoint in {self.save_dir} (tried {', '.join(skipped)})"
        )
