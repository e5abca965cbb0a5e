"""Run ``training.train`` under torchrun and, after training, dump every rank's weights.

Used by test_ddp.py: ``torchrun --nproc_per_node=2 ddp_worker.py --config ... --out DIR``. The
training itself is the unmodified CLI; only the dump (``DIR/rank<r>.safetensors``) is added.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

from training import loop, train

_original = loop.Trainer.train


def _train_and_dump(self: loop.Trainer, stop_at: int | None = None) -> dict:
    summary = _original(self, stop_at)
    state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
    save_file(state, str(Path(self.out) / f"rank{self.info.rank}.safetensors"))
    return summary


if __name__ == "__main__":
    loop.Trainer.train = _train_and_dump  # type: ignore[method-assign]
    raise SystemExit(train.main(sys.argv[1:]))
