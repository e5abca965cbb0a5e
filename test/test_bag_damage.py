"""Damaged, truncated and hostile bags are one BagError naming the bag and the fix.

Each case is a real bag written by :class:`BagWriter` (or rosbags' plain writer, for an mcap
without checksums, as other tools write them), then cut short or overwritten on disk the way a
full disk, a killed copy or a bad sector leaves it. Before these checks the reader raised
``apsw.CorruptError`` / ``OverflowError`` tracebacks, or stopped early without a word.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from sam_moelora_ros.bag import BagError, BagReader, BagWriter

pytestmark = pytest.mark.timeout(60)

STORE = get_typestore(Stores.ROS2_HUMBLE)
COUNT = 3000


def _write(path: Path, storage: str, plain_rosbags: bool = False) -> Path:
    """A bag of COUNT String messages (~600 KB: one mcap chunk, a few hundred sqlite pages)."""
    string = STORE.types["std_msgs/msg/String"]
    if plain_rosbags:  # rosbags' own writer: mcap chunks without a CRC
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        with Writer(path, version=9, storage_plugin=plugin) as writer:
            conn = writer.add_connection("/x", "std_msgs/msg/String", typestore=STORE)
            for i in range(COUNT):
                data = STORE.serialize_cdr(string(data=f"hello {i} " * 20), conn.msgtype)
                writer.write(conn, 1000 + i, data)
        return path
    with BagWriter(path, storage) as writer:
        writer.add_topic("/x", "std_msgs/msg/String")
        for i in range(COUNT):
            writer.write("/x", 1000 + i, string(data=f"hello {i} " * 20))
    return path


def _storage_file(bag: Path) -> Path:
    return next(f for f in bag.iterdir() if f.suffix in (".db3", ".mcap"))


def _read_all(bag: Path) -> int:
    with BagReader(bag) as reader:
        return sum(1 for _ in reader.messages())


def _flip(path: Path, at: int, width: int) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + width] = bytes(b ^ 0x5A for b in data[at : at + width])
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    return {
        "sqlite3": _write(root / "sqlite3", "sqlite3"),
        "mcap": _write(root / "mcap", "mcap"),
        "mcap_no_crc": _write(root / "mcap_no_crc", "mcap", plain_rosbags=True),
    }


def _copy(bags: dict[str, Path], kind: str, tmp_path: Path) -> tuple[Path, Path]:
    bag = tmp_path / kind
    shutil.copytree(bags[kind], bag)
    return bag, _storage_file(bag)


def test_intact_bags_read_whole(bags: dict[str, Path]) -> None:
    for bag in bags.values():
        assert _read_all(bag) == COUNT


def test_our_mcap_chunks_carry_a_crc(bags: dict[str, Path]) -> None:
    """Chunk records (opcode 0x06) hold a non-zero CRC-32 at byte 33, which rosbags verifies."""
    data = _storage_file(bags["mcap"]).read_bytes()
    crcs, at = [], 8  # after the magic
    while at < len(data) - 8:
        opcode, length = data[at], struct.unpack_from("<Q", data, at + 1)[0]
        if opcode == 0x06:
            crcs.append(struct.unpack_from("<I", data, at + 33)[0])
        if opcode == 0x0F:  # data end: the summary follows
            break
        at += 9 + length
    assert crcs and all(crcs)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_truncated_bag_is_one_line_with_the_fix(bags, tmp_path: Path, storage: str) -> None:
    bag, file = _copy(bags, storage, tmp_path)
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(BagError) as info:
        _read_all(bag)
    text = str(info.value)
    assert "\n" not in text and str(bag) in text
    assert "damaged or truncated" in text
    assert (".recover" if storage == "sqlite3" else "mcap recover") in text


def test_a_flipped_byte_in_our_mcap_is_detected(bags, tmp_path: Path) -> None:
    """One byte of a message payload: without the chunk CRC this replayed a wrong message."""
    bag, file = _copy(bags, "mcap", tmp_path)
    _flip(file, file.stat().st_size // 2, 1)
    with pytest.raises(BagError, match=r"damaged or truncated: .*Chunk checksum mismatch"):
        _read_all(bag)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.7])
def test_a_mid_file_damaged_mcap_without_crc_does_not_end_silently(bags, tmp_path, fraction):
    """A foreign mcap (no CRCs) overwritten mid-chunk: the reader used to stop early, quietly
    returning a third of the bag; the metadata's record count now catches it."""
    bag, file = _copy(bags, "mcap_no_crc", tmp_path)
    _flip(file, int(file.stat().st_size * fraction), 64)
    with pytest.raises(BagError, match=rf"{bag} is damaged or truncated: .*mcap recover"):
        _read_all(bag)


def test_mid_file_damage_in_sqlite3_is_a_bag_error_not_an_apsw_traceback(bags, tmp_path):
    """sqlite3 has no checksums: damage to the page structure is found, some while reading."""
    outcomes: list[int | str] = []
    for fraction in (0.1, 0.3, 0.5, 0.9, 0.99):
        bag = tmp_path / f"b{fraction}"
        shutil.copytree(bags["sqlite3"], bag)
        file = _storage_file(bag)
        _flip(file, int(file.stat().st_size * fraction), 64)
        try:
            outcomes.append(_read_all(bag))
        except BagError as exc:  # anything else fails the test
            assert str(bag) in str(exc) and ".recover" in str(exc)
            outcomes.append(str(exc))
    assert any("reading record" in str(o) for o in outcomes), outcomes


def test_a_billion_laughs_metadata_yaml_is_refused(bags, tmp_path: Path) -> None:
    bag, _ = _copy(bags, "sqlite3", tmp_path)
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    (bag / "metadata.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(BagError, match=r"metadata\.yaml expands to more than .*billion laughs"):
        BagReader(bag)


def test_a_deeply_nested_metadata_yaml_is_refused(bags, tmp_path: Path) -> None:
    bag, _ = _copy(bags, "mcap", tmp_path)
    (bag / "metadata.yaml").write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(BagError, match=r"metadata\.yaml nests deeper than 64 levels"):
        BagReader(bag)


def test_the_replay_commands_print_one_line_and_exit_2(bags, tmp_path, capsys) -> None:
    from sam_moelora_ros.replay.cli import main as replay_eval
    from sam_moelora_ros.replay.live_cli import main as replay_live

    bag, file = _copy(bags, "sqlite3", tmp_path)
    file.write_bytes(file.read_bytes()[:4096])
    out = tmp_path / "out"
    for main, name in ((replay_eval, "replay_eval"), (replay_live, "replay_live")):
        assert main(["--bag", str(bag), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"{name}: error: cannot open bag {bag}: ")
        assert err.count("\n") == 1 and ".recover" in err and "Traceback" not in err
