"""``replay_eval --export-dataset DIR``: a robot's recording as a DELIVER-layout training set.

Why: a robot team has bags, not DELIVER folders, and the best training data for a robot is its
own sensors. Replay already builds every frame's synchronised network images from the model's
input contract (the node's code path); this writes them where ``DeliverDataset`` reads them::

    DIR/input_encodings.json                              the contract the images were made with
    DIR/img/<condition>/<split>/<sequence>/<index:06d>_rgb_front.png
    DIR/{depth,event,lidar}/<condition>/<split>/<sequence>/<index:06d>_<kind>_front.png
    DIR/semantic/<condition>/<split>/<sequence>/<index:06d>_semantic_front.png  (with labels)
    DIR/frames_<split>_<sequence>.json    per written index: the anchor's stamp, its sensors

so ``python -m sam_moelora_ros.training.train`` trains on it (``data.dataset: deliver``) and
``training.evaluate`` scores what replay scored. Rules:

- every modality image is written at the ground truth's (else the camera's) size, resampled as
  the Segmenter resamples it (``artifacts.save_inputs_png``'s rule);
- depth goes to ``depth/`` and, as the generator does, ``hha/`` (DELIVER's reader default), both
  holding the contract's depth images;
- a frame that lacks one of the exported sensors (dropped, stale, not yet arrived) is not
  written (counted in :attr:`skipped`): a DELIVER folder has no way to say "absent", and an
  all-zero image is not what the model saw (an absent sensor has no expert and no router
  weight);
- with ground truth, frames without a label are not written either (counted), so the folder
  never holds an image without its label; a bag without labels gives inputs only (no
  ``semantic/``): label them before training;
- the condition folder is the frame's condition when it is one of DELIVER's five, else ``sun``
  (the folder name is all DELIVER's reader knows); the sequence folder is the bag's name.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sam_moelora_ros.datasets.contract import write_contract
from sam_moelora_ros.datasets.deliver import CONDITIONS
from sam_moelora_ros.replay.artifacts import resized_like_the_model
from sam_moelora_ros.replay.pipeline import FrameResult
from sam_moelora_ros.sensors.encodings import InputContract
from sam_moelora_ros.synthetic.deliver import deliver_path, semantic_png, write_png

DEFAULT_CONDITION = "sun"


class DatasetExporter:
    """Writes replayed frames into a DELIVER-layout folder (see the module docstring).

    Args:
        root: the dataset folder (created).
        split: DELIVER split folder (``train``, ``val`` or ``test``).
        sequence: the sequence folder name (the bag's name).
        contract: the input contract the images were built with (the model's), for the given
            ``modalities``; recorded as ``input_encodings.json``.
        labelled: whether the replay has ground truth (then frames without it are skipped).
    """

    def __init__(
        self,
        root: Path,
        split: str,
        sequence: str,
        contract: InputContract,
        modalities: tuple[str, ...],
        labelled: bool,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.sequence = sequence
        self.modalities = modalities
        self.labelled = labelled
        self.written = 0
        self.skipped: Counter[str] = Counter()
        self.frames: list[dict[str, object]] = []
        """Per written index: the anchor's stamp (ns), condition and sensors (the index file)."""
        write_contract(self.root, contract.restrict(modalities))

    def add(self, result: FrameResult) -> bool:
        """Write one frame; False (and counted) when it cannot be a training sample."""
        missing = [m for m in self.modalities if m not in result.inputs]
        if missing:
            self.skipped[f"without {'+'.join(missing)}"] += 1
            return False
        truth = result.ground_truth
        if self.labelled and truth is None:
            self.skipped["no ground truth"] += 1
            return False
        size = result.labels.shape if truth is None else truth.shape
        condition = result.condition if result.condition in CONDITIONS else DEFAULT_CONDITION
        index = self.written
        for name in self.modalities:
            image = result.inputs[name]
            if image.shape[:2] != tuple(size):
                image = resized_like_the_model(image, size, name)
            for key in ("depth", "hha") if name == "depth" else (name,):
                path = deliver_path(self.root, key, condition, self.split, self.sequence, index)
                write_png(path, image)
        if truth is not None:
            path = deliver_path(self.root, "semantic", condition, self.split, self.sequence, index)
            write_png(path, semantic_png(truth))
        self.written += 1
        self.frames.append(
            {"index": index, "stamp_ns": result.stamp_ns, "condition": condition,
             "sensors": list(result.present)}
        )  # fmt: skip
        return True

    def close(self) -> Path:
        """Write the index file (which bag frame each written index is); returns its path."""
        path = self.root / f"frames_{self.split}_{self.sequence}.json"
        path.write_text(json.dumps(self.frames, indent=1) + "\n")
        return path

    def summary(self) -> str:
        """One line for the command's output."""
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        labels = "with labels" if self.labelled else "inputs only (no labels in the bag)"
        extra = f"; not written: {skipped}" if skipped else ""
        return f"exported {self.written} frames to {self.root} ({labels}){extra}"
