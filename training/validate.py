"""Running a model over a labelled loader: confusion matrices per modality subset and condition.

Shared by the periodic validation of :mod:`training.loop` and by :mod:`training.evaluate`. Each
rank scores its shard (``ShardSampler``: no padding, so nothing is counted twice) into ``K x K``
count matrices (rows = ground truth, columns = prediction, ignore pixels skipped) on the device;
the per-rank results are merged on every rank at the end. Router weights are summed per
condition for the full-modality subset, which is what the router plot shows.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from sam_moelora_ros.evaluation import ConfusionMatrix, confusion_counts, percent

from .distributed import DistInfo

Subset = tuple[str, ...]


@torch.no_grad()
def run_inference(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    subsets: Sequence[Subset],
    num_classes: int,
    device: torch.device,
    info: DistInfo,
    autocast: Any = None,
    progress: bool = False,
    desc: str = "val",
) -> dict[str, Any]:
    """Score ``model`` on every batch with every modality subset.

    Returns ``{"confusion": {(subset, condition): K x K ndarray}, "router": {condition:
    {modality: [sum of weights per level]}}, "router_count": {condition: frames}}``, merged
    over ranks.
    """
    was_training = model.training
    model.eval()
    counts: dict[tuple[Subset, str], torch.Tensor] = {}
    router: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    router_count: dict[str, int] = defaultdict(int)
    full = max(subsets, key=len) if subsets else ()
    ctx = autocast if autocast is not None else contextlib.nullcontext
    bar = tqdm(loader, desc=desc, disable=not (progress and info.is_main), leave=False)
    try:
        for batch in bar:
            target = batch["label"].to(device)
            conditions = batch.get("condition") or ["all"] * target.shape[0]
            for subset in subsets:
                inputs = {m: batch["inputs"][m].to(device) for m in subset}
                with ctx():
                    logits, extras = model(inputs, return_extras=True)
                pred = logits.float().argmax(1)
                for i, condition in enumerate(conditions):
                    key = (subset, str(condition))
                    m = confusion_counts(pred[i], target[i], num_classes)
                    counts[key] = counts[key] + m if key in counts else m
                if subset == full:
                    for i, condition in enumerate(conditions):
                        router_count[str(condition)] += 1
                        for mod, w in extras["router_weights"].items():
                            w = w[i].float()
                            prev = router[str(condition)].get(mod)
                            router[str(condition)][mod] = w if prev is None else prev + w
    finally:
        model.train(was_training)
    local = {
        "confusion": {k: v.cpu().numpy() for k, v in counts.items()},
        "router": {c: {m: v.cpu().tolist() for m, v in d.items()} for c, d in router.items()},
        "router_count": dict(router_count),
    }
    return _merge_ranks(local, info)


def _merge_ranks(local: dict[str, Any], info: DistInfo) -> dict[str, Any]:
    if not info.enabled:
        return local
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, local)  # small dicts of numbers; in memory only
    merged: dict[str, Any] = {"confusion": {}, "router": defaultdict(dict), "router_count": {}}
    for part in gathered:
        for key, m in part["confusion"].items():
            prev = merged["confusion"].get(key)
            merged["confusion"][key] = m if prev is None else prev + m
        for cond, mods in part["router"].items():
            for mod, w in mods.items():
                prev = merged["router"][cond].get(mod)
                merged["router"][cond][mod] = (
                    list(w) if prev is None else [a + b for a, b in zip(prev, w, strict=True)]
                )
        for cond, n in part["router_count"].items():
            merged["router_count"][cond] = merged["router_count"].get(cond, 0) + n
    merged["router"] = dict(merged["router"])
    return merged


def summarise(result: dict[str, Any], num_classes: int) -> dict[Subset, dict[str, Any]]:
    """Per subset: ``{"miou": percent, "confusion": ConfusionMatrix, "per_condition":
    {condition: ConfusionMatrix}}`` (conditions sorted)."""
    out: dict[Subset, dict[str, Any]] = {}
    for (subset, condition), m in sorted(result["confusion"].items()):
        entry = out.setdefault(
            subset, {"confusion": ConfusionMatrix(num_classes), "per_condition": {}}
        )
        cm = ConfusionMatrix.from_tensor(m)
        entry["confusion"] = entry["confusion"] + cm
        entry["per_condition"][condition] = cm
    for entry in out.values():
        entry["miou"] = percent(entry["confusion"].miou())
    return out
