"""The one ``resolve_device``: shared by the Segmenter and training, with training's local rank."""

from __future__ import annotations

import pytest
import torch

from sam_moelora_ros.inference.device import DeviceError, SegmenterError, resolve_device
from training import distributed

CUDA = torch.cuda.is_available()


def test_training_uses_the_same_function():
    assert distributed.resolve_device is resolve_device
    info = distributed.setup("cpu")
    assert info.device == torch.device("cpu") and not info.enabled


def test_device_errors_are_segmenter_errors_and_runtime_errors():
    """Callers of either side keep catching what they caught before the two were merged."""
    with pytest.raises(DeviceError, match="not a torch device") as info:
        resolve_device("toaster", local_rank=0)
    assert isinstance(info.value, SegmenterError) and isinstance(info.value, RuntimeError)


def test_a_local_rank_leaves_the_cpu_alone():
    assert resolve_device("cpu", local_rank=3) == torch.device("cpu")
    assert resolve_device(torch.device("cpu"), local_rank=1) == torch.device("cpu")
    expected = torch.device("cuda", 0) if CUDA else torch.device("cpu")
    assert resolve_device("auto", local_rank=0) == expected


def test_a_negative_local_rank_is_refused():
    with pytest.raises(DeviceError, match="local_rank must be >= 0, got -1"):
        resolve_device("cpu", local_rank=-1)


@pytest.mark.parametrize("name", ["mps", "meta"])
def test_devices_other_than_cpu_and_cuda_are_refused_for_training_too(name):
    with pytest.raises(DeviceError, match=f"'{name}' is not supported"):
        resolve_device(name, local_rank=0)


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_cuda_says_what_to_use(name):
    with pytest.raises(DeviceError, match="CUDA is not available.*'auto' or 'cpu'"):
        resolve_device(name, local_rank=0)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_the_local_rank_picks_the_gpu_unless_one_is_named():
    count = torch.cuda.device_count()
    assert resolve_device("cuda", local_rank=count - 1) == torch.device("cuda", count - 1)
    assert resolve_device("auto", local_rank=0) == torch.device("cuda", 0)
    assert resolve_device("cuda:0", local_rank=count - 1) == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda")  # inference: the current device
    with pytest.raises(DeviceError, match=f"only {count} CUDA device"):
        resolve_device("cuda", local_rank=count)
