"""rosbag2 read/write (sqlite3 and mcap) with ``rosbags``: no ROS install needed. No rclpy.

Why a module of our own over ``rosbags``: every replay tool needs the same three things --
messages in *header-stamp* order (a bag is stored in receive order, and the synchroniser must see
stamps the way the sensors produced them), the raw CDR bytes next to the deserialised message
(the live player publishes those bytes unchanged), and an error that lists what the bag holds
when a topic or a type is missing (the usual mistake on a user's bag is a topic name).

Messages are rosbags dataclasses; the ``sensors`` codecs and the
:mod:`sam_moelora_ros.pipeline.decode` decoders read their fields exactly like rclpy messages. Types
come from the bag's own embedded definitions when it has them, else from the ROS 2 Humble store
(identical for the sensor types up to Kilted), else, for the event-camera types the replay takes
(bags recorded before rosbag2 stored definitions), from :data:`KNOWN_DEFINITIONS`.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from binascii import crc32
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.files import regular_file_problem
from sam_moelora_ros.safe_yaml import YamlLimitError, load_yaml_file

__all__ = [
    "LATCHED_QOS",
    "BagError",
    "BagMessage",
    "BagReader",
    "BagWriter",
    "RosbagWriter",
    "header_stamp_ns",
]

STORE = Stores.ROS2_HUMBLE
REORDER_WINDOW_S = 1.0
"""How far (receive time) a message may trail one with a later stamp and still come out in
stamp order; transport latencies are milliseconds, so a second is generous and bounds memory."""

KNOWN_DEFINITIONS: dict[str, str] = {
    "event_camera_msgs/msg/EventPacket": (
        "std_msgs/Header header\nuint32 height\nuint32 width\nuint64 seq\nuint64 time_base\n"
        "string encoding\nbool is_bigendian\nuint8[] events\n"
    ),
    "dvs_msgs/msg/Event": "uint16 x\nuint16 y\nbuiltin_interfaces/Time ts\nbool polarity\n",
    "dvs_msgs/msg/EventArray": (
        "std_msgs/Header header\nuint32 height\nuint32 width\ndvs_msgs/Event[] events\n"
    ),
}
"""``.msg`` text of event_camera_msgs' EventPacket and the ROS 2 dvs_msgs EventArray (nested
types first): used for a bag that embeds no definition of them."""

_INF = QosTime(2147483647, 4294967295)
LATCHED_QOS = Qos(
    QosHistory.KEEP_LAST,
    1,
    QosReliability.RELIABLE,
    QosDurability.TRANSIENT_LOCAL,
    _INF,
    _INF,
    QosLiveliness.AUTOMATIC,
    _INF,
    False,
)
"""The offered QoS of a latched topic (``/tf_static``): late joiners still receive it."""

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


class BagError(SamMoeLoraError):
    """A bag cannot be read as asked (missing file, topic or type, damaged storage); the message
    names the bag and the fix."""


REPAIR_HINT = {
    "sqlite3": "re-record or copy the bag again; to salvage what is left, "
    "`sqlite3 BAG.db3 .recover | sqlite3 fixed.db3` then `ros2 bag reindex`",
    "mcap": "re-record or copy the bag again; to salvage what is left, "
    "`mcap recover BAG.mcap -o fixed.mcap` then `ros2 bag reindex`",
}
"""What to do about a damaged storage file, per storage plugin."""


def _storage_of(path: Path) -> str:
    return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


class _CrcMcapWriter(McapWriter):
    """rosbags' mcap writer, with each chunk's CRC-32 filled in.

    rosbags 0.11 writes 0 ("no checksum") in every chunk's ``uncompressed_crc``, so a flipped bit
    in our own output replayed silently; its reader does verify a non-zero CRC. The chunk record
    is ``opcode(1) length(8) start(8) end(8) uncompressed_size(8) crc(4) ...``: after the parent
    writes it, the CRC of the uncompressed chunk bytes is patched in at offset 33.
    """

    CRC_OFFSET = 1 + 8 + 8 + 8 + 8

    def close_chunk(self) -> None:
        crc = crc32(self.chunk.bio.getvalue())
        start = self.bio.tell()
        super().close_chunk()
        end = self.bio.tell()
        self.bio.seek(start + self.CRC_OFFSET)
        self.bio.write(struct.pack("<I", crc))
        self.bio.seek(end)


class RosbagWriter(Writer):
    """``rosbags.rosbag2.Writer`` whose mcap storage writes chunk CRCs (see
    :class:`_CrcMcapWriter`): every mcap this package writes goes through it."""

    STORAGE_PLUGINS: Mapping[StoragePlugin, Any] = {
        **Writer.STORAGE_PLUGINS,
        StoragePlugin.MCAP: _CrcMcapWriter,
    }


@dataclass(frozen=True)
class BagMessage:
    """One bag record.

    Attributes:
        topic, msgtype: as stored in the bag.
        log_ns: the bag's receive timestamp (ns).
        stamp_ns: ``header.stamp`` (ns) when the message has a header, else ``log_ns``.
        raw: the serialised CDR bytes (what the live player publishes).
        msg: the deserialised message, or None when deserialisation failed (see ``error``).
        error: why the bytes could not be deserialised (a corrupted record), else None.
    """

    topic: str
    msgtype: str
    log_ns: int
    stamp_ns: int
    raw: bytes = field(repr=False)
    msg: Any = field(repr=False)
    error: str | None = None

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9


def header_stamp_ns(msg: Any) -> int | None:
    """``msg.header.stamp`` in ns, or None for messages without a header (String, TFMessage)."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return None
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _one_line(exc: BaseException) -> str:
    """``exc`` as one line (reader errors sometimes span lines)."""
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _refuse_special_files(path: Path) -> None:
    """Raise :class:`BagError` if the bag's metadata or a storage file it lists is not a regular
    file (a named pipe would block the reader forever; a device would never end)."""
    metadata = path / "metadata.yaml"
    if not metadata.exists():
        return  # the caller says "not a rosbag2 folder"
    problem = regular_file_problem(metadata)
    if problem is None:
        try:
            info = load_yaml_file(metadata) or {}
            listed = info["rosbag2_bagfile_information"]["relative_file_paths"]
            files = [path / PurePath(str(name)).name for name in listed]
        except YamlLimitError as exc:  # checked before rosbags' own YAML reader sees it
            raise BagError(
                f"cannot open bag {path}: its metadata.yaml {exc}; restore it from the recording "
                "or rebuild it with `ros2 bag reindex`"
            ) from exc
        except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
            return  # the reader reports a malformed metadata.yaml in its own words
        problem = next(
            (found for f in files if f.exists() and (found := regular_file_problem(f))), None
        )
    if problem is not None:
        raise BagError(f"cannot open bag {path}: {problem}")


class BagReader:
    """Open a rosbag2 folder (or its ``metadata.yaml``) for reading; a context manager.

    Args:
        path: the bag directory.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.name == "metadata.yaml":
            path = path.parent
        _refuse_special_files(path)
        if not (path / "metadata.yaml").is_file():
            raise BagError(
                f"{path} is not a rosbag2 folder (no metadata.yaml); pass the bag directory"
            )
        self.path = path
        try:
            self._reader = Reader(path)
            self._reader.open()
        except Exception as exc:
            raise BagError(
                f"cannot open bag {path}: {_one_line(exc)}; the bag is damaged or truncated: "
                f"{REPAIR_HINT[_storage_of(path)]}"
            ) from exc
        self.typestore = get_typestore(STORE)
        self._register_bag_types()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    def _register_bag_types(self) -> None:
        """Add the bag's embedded message definitions for types the store does not know."""
        for conn in self._reader.connections:
            if conn.msgtype in self.typestore.types:
                continue
            msgdef = getattr(conn, "msgdef", None)
            data = getattr(msgdef, "data", "") if msgdef is not None else ""
            if data and "MSG" in str(getattr(msgdef, "format", "")):
                try:
                    self.typestore.register(get_types_from_msg(data, conn.msgtype))
                except Exception:  # an unparsable definition: the type stays unknown
                    continue
        for name, text in KNOWN_DEFINITIONS.items():
            if name not in self.typestore.types:
                self.typestore.register(get_types_from_msg(text, name))

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type, as stored."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def counts(self) -> dict[str, int]:
        """Topic -> number of messages."""
        out: dict[str, int] = {}
        for c in self._reader.connections:
            out[c.topic] = out.get(c.topic, 0) + c.msgcount
        return out

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def duration_s(self) -> float:
        return max(0, int(self._reader.end_time) - int(self._reader.start_time)) * 1e-9

    def qos(self, topic: str) -> list[Qos]:
        """The offered QoS profiles recorded for ``topic`` (empty when unknown)."""
        for c in self._reader.connections:
            if c.topic == topic:
                return list(getattr(c.ext, "offered_qos_profiles", []) or [])
        return []

    def describe(self) -> str:
        """``topic (type, N msgs)`` per line: what error messages show."""
        counts = self.counts
        return "\n".join(
            f"  {t} ({ty}, {counts.get(t, 0)} msgs)" for t, ty in sorted(self.topics.items())
        )

    def require(self, topics: Iterable[str]) -> None:
        """Raise :class:`BagError` naming the missing topics and listing the bag's topics."""
        missing = [t for t in topics if t not in self.topics]
        if missing:
            raise BagError(
                f"bag {self.path} has no topic {', '.join(missing)}; it holds:\n"
                f"{self.describe()}\nremap with --topic NAME=TOPIC (see docs/replay.md)"
            )
        unknown = [t for t in topics if self.topics[t] not in self.typestore.types]
        if unknown:
            raise BagError(
                f"bag {self.path}: unknown message type for "
                + ", ".join(f"{t} ({self.topics[t]})" for t in unknown)
                + f"; the bag embeds no definition for it. Topics:\n{self.describe()}"
            )

    def _stored(self, conns: list[Any]) -> Iterator[tuple[Any, int, Any]]:
        """The storage's records of ``conns``; a damaged or truncated storage file (an apsw or
        mcap reader error, or fewer records than the bag's metadata lists) is one
        :class:`BagError` naming the bag and the fix, after the records read before it."""
        expected = sum(int(c.msgcount) for c in conns)
        seen = 0
        source = self._reader.messages(connections=conns)
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception as exc:  # apsw.CorruptError, ReaderError, struct/Overflow errors
                raise self._damaged(f"reading record {seen + 1} failed ({_one_line(exc)})") from exc
            seen += 1
            yield item
        if seen < expected:
            raise self._damaged(
                f"it ends after {seen} of the {expected} records its metadata.yaml lists"
            )

    def _damaged(self, what: str) -> BagError:
        return BagError(
            f"bag {self.path} is damaged or truncated: {what}; "
            f"{REPAIR_HINT[_storage_of(self.path)]}"
        )

    def _records(self, topics: Sequence[str] | None) -> Iterator[BagMessage]:
        conns = [c for c in self._reader.connections if topics is None or c.topic in topics]
        for conn, log_ns, raw in self._stored(conns):
            data = bytes(raw)
            try:
                msg = self.typestore.deserialize_cdr(data, conn.msgtype)
            except Exception as exc:
                yield BagMessage(
                    conn.topic,
                    conn.msgtype,
                    log_ns,
                    log_ns,
                    data,
                    None,
                    f"{type(exc).__name__}: {exc}",
                )
                continue
            stamp = header_stamp_ns(msg)
            yield BagMessage(
                conn.topic, conn.msgtype, log_ns, log_ns if stamp is None else stamp, data, msg
            )

    def messages(
        self,
        topics: Sequence[str] | None = None,
        *,
        order: str = "stamp",
        window_s: float = REORDER_WINDOW_S,
    ) -> Iterator[BagMessage]:
        """Yield the records of ``topics`` (all when None), deserialised.

        ``order="stamp"`` sorts by header stamp (ties by receive time) through a bounded reorder
        buffer of ``window_s`` receive time; ``order="log"`` keeps the bag's receive order (what
        a live player replays). A record that fails to deserialise is yielded with ``msg=None``
        and ``error`` set, so the caller reports it instead of stopping.
        """
        if topics is not None:
            self.require(topics)
        if order == "log":
            yield from self._records(topics)
            return
        if order != "stamp":
            raise ValueError(f"order must be 'stamp' or 'log', got {order!r}")
        window_ns = int(window_s * 1e9)
        heap: list[tuple[int, int, int, BagMessage]] = []
        seq = itertools.count()
        for record in self._records(topics):
            heapq.heappush(heap, (record.stamp_ns, record.log_ns, next(seq), record))
            while heap and heap[0][0] < record.log_ns - window_ns:
                yield heapq.heappop(heap)[3]
        while heap:
            yield heapq.heappop(heap)[3]


class BagWriter:
    """Write a rosbag2 (``storage`` sqlite3 or mcap); a context manager.

    Topics are added with :meth:`add_topic` (``latched=True`` records transient-local QoS, as
    ``/tf_static`` needs); :meth:`write` takes a rosbags message (serialised with the typestore)
    or raw CDR bytes.
    """

    def __init__(self, path: str | Path, storage: str = "sqlite3", typestore: Any = None) -> None:
        plugin = STORAGES.get(storage)
        if plugin is None:
            raise BagError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists; delete it or choose another output path")
        self.typestore = typestore or get_typestore(STORE)
        self._writer = RosbagWriter(self.path, version=9, storage_plugin=plugin)
        self._conns: dict[str, Any] = {}
        self._types: dict[str, str] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def add_topic(self, topic: str, msgtype: str, *, latched: bool = False) -> None:
        if topic in self._conns:
            return
        if msgtype not in self.typestore.types:
            raise BagError(f"unknown message type {msgtype!r} for topic {topic}")
        qos = [LATCHED_QOS] if latched else []
        self._conns[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=qos
        )
        self._types[topic] = msgtype

    def write(self, topic: str, log_ns: int, msg: Any) -> None:
        """Write ``msg`` (a message object, or CDR ``bytes``) at receive time ``log_ns``."""
        if topic not in self._conns:
            raise BagError(f"topic {topic} was not added; call add_topic first")
        data = msg if isinstance(msg, (bytes, bytearray, memoryview)) else None
        if data is None:
            data = self.typestore.serialize_cdr(msg, self._types[topic])
        self._writer.write(self._conns[topic], int(log_ns), bytes(data))
