"""Hostile YAML (deep nesting, "billion laughs" aliases, huge files) is one line naming the file.

``yaml.safe_load`` turned deep nesting into a ``RecursionError`` traceback and accepted a 1 KB
alias bomb that expands to 10^9 nodes when walked; each reader of YAML below goes through
:mod:`sam_moelora_ros.safe_yaml` and names its own file and the limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sam_moelora_ros.safe_yaml import MAX_YAML_BYTES, YamlLimitError, load_yaml, load_yaml_file

pytestmark = pytest.mark.timeout(60)

LAUGHS = "\n".join(
    ['lol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)
"""Nine levels of nine aliases: 9^9 (387 M) scalars once expanded, 600 bytes of text."""
DEEP = "a: " + "[" * 20_000 + "]" * 20_000
DEEP_MAP = "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v: 1\n"


def test_ordinary_yaml_loads_like_safe_load() -> None:
    text = "a: {b: [1, 2.5, &x three, *x]}\nbase: &b {c: 1}\nmerged: {<<: *b, d: 2}\n"
    assert load_yaml(text) == {
        "a": {"b": [1, 2.5, "three", "three"]},
        "base": {"c": 1},
        "merged": {"c": 1, "d": 2},
    }
    assert load_yaml("") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (LAUGHS, "billion laughs"),
        (DEEP, "nests deeper than 64 levels"),
        (DEEP_MAP, "nests deeper than 64 levels"),
        ("a: &a [1, *a]", "refers to itself"),
        ("x" * (MAX_YAML_BYTES + 1), "limit"),
    ],
)
def test_hostile_shapes_are_refused_fast(text: str, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(YamlLimitError, match=reason):
        load_yaml(text)
    assert time.perf_counter() - started < 5.0


def test_a_huge_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as stream:
        stream.truncate(4 * MAX_YAML_BYTES)  # sparse: 32 MiB of NULs costs no disk
    with pytest.raises(YamlLimitError, match="larger than the .*-byte limit"):
        load_yaml_file(big)


@pytest.mark.parametrize("text", [LAUGHS, DEEP])
def test_params_file(tmp_path: Path, text: str) -> None:
    from sam_moelora_ros.params.params_file import ParamsFileError, check_params_file

    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsFileError, match=rf"--params-file {path} .*(laughs|nests deeper)"):
        check_params_file(str(path))


@pytest.mark.parametrize("text", [LAUGHS, DEEP])
def test_palette_file(tmp_path: Path, text: str) -> None:
    from sam_moelora_ros.params.palette import load_palette
    from sam_moelora_ros.params.specs import ParameterError

    path = tmp_path / "palette.yaml"
    path.write_text(text)
    with pytest.raises(ParameterError, match=r"output\.palette_file.*(laughs|nests deeper)"):
        load_palette(str(path), 3)


def test_a_deep_json_palette_is_one_error(tmp_path: Path) -> None:
    from sam_moelora_ros.params.palette import load_palette
    from sam_moelora_ros.params.specs import ParameterError

    path = tmp_path / "palette.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParameterError, match=r"output\.palette_file"):
        load_palette(str(path), 3)


@pytest.mark.parametrize("text", [LAUGHS, DEEP])
def test_adapter_model_config(tmp_path: Path, text: str) -> None:
    from sam_moelora_ros.model import ModelConfig, ModelConfigError

    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(ModelConfigError, match=rf"{path} .*(laughs|nests deeper)"):
        ModelConfig.load(path)


@pytest.mark.parametrize("text", [LAUGHS, DEEP])
def test_training_config_and_overrides(tmp_path: Path, text: str) -> None:
    from training.config import TrainConfig, TrainConfigError

    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(TrainConfigError, match=rf"{path} .*(laughs|nests deeper)"):
        TrainConfig.load(path)
    ok = tmp_path / "ok.yaml"
    ok.write_text("{}\n")
    with pytest.raises(TrainConfigError, match=r"override .*(laughs|nests deeper)"):
        TrainConfig.load(ok, [f"optim.lr={text}"])


def test_study_file(tmp_path: Path) -> None:
    from training.config import TrainConfigError
    from training.study import Study

    path = tmp_path / "study.yaml"
    path.write_text(DEEP)
    with pytest.raises(TrainConfigError, match=rf"study file {path}: .*nests deeper"):
        Study.load(path)


def test_replay_param_values() -> None:
    from sam_moelora_ros.replay.cli import parse_params

    assert parse_params(["anchor=depth", "sync.slop=0.1"]) == {"anchor": "depth", "sync.slop": 0.1}
    with pytest.raises(ValueError, match=r"--param 'x=\[.*nests deeper"):
        parse_params(["x=" + "[" * 1000])
    with pytest.raises(ValueError, match=r"--param 'x=\{': the value is not YAML"):
        parse_params(["x={"])
