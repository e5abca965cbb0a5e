"""Event-camera types in bags that embed no message definition (recorded before rosbag2 did)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sam_moelora_ros.bag import KNOWN_DEFINITIONS, BagReader
from sam_moelora_ros.sensors.event_packets import decode_event_packet, encode_mono


def test_a_bag_without_definitions_still_reads_event_packets(tmp_path: Path) -> None:
    store = get_typestore(Stores.ROS2_HUMBLE)
    name = "event_camera_msgs/msg/EventPacket"
    store.register(get_types_from_msg(KNOWN_DEFINITIONS[name], name))
    t = store.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=4, nanosec=0), frame_id="ev"
    )
    data = np.frombuffer(encode_mono([5, 6], [7, 8], [0, 500], [1, 0]), np.uint8)
    packet = t[name](
        header=header, height=480, width=640, seq=0, time_base=0, encoding="mono",
        is_bigendian=False, events=data,
    )  # fmt: skip
    writer = Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.SQLITE3)
    with writer:
        conn = writer.add_connection("/events", name, msgdef="", rihs01=store.hash_rihs01(name))
        writer.write(conn, 4_000_000_000, store.serialize_cdr(packet, name))
    with BagReader(tmp_path / "bag") as reader:
        assert reader._reader.connections[0].msgdef.data == ""  # really none in the bag
        (record,) = list(reader.messages(["/events"]))
    assert record.error is None
    events = decode_event_packet(record.msg)
    assert events.x.tolist() == [5, 6] and events.t.tolist() == [4_000_000_000, 4_000_000_500]
