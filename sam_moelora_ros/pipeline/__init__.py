"""The frame pipeline shared by the node and replay: decode, assemble, run, report. No rclpy.

- :mod:`.decode`: one sensor message -> its network image (or :class:`decode.BadMessage`);
- :mod:`.kinds`: the message types each sensor takes (``SUPPORTED_TYPES``), checked once per topic;
- :mod:`.event_stream`: event packets -> the time window before each frame's anchor;
- :mod:`.assembly`: the per-sensor decoders and the synchroniser settings for a node config;
- :mod:`.runtime`: bounded hand-over slot, throttles, sensor health, frame presence, stats;
- :mod:`.diagnostics`: /diagnostics statuses computed from those statistics;
- :mod:`.intake`: what the node's callbacks do with a message (decode, check, count, push);
- :mod:`.worker`: the inference worker (segment, publish, statistics, router weights);
- :mod:`.outputs`: labels -> colour overlay and the output images.
"""
