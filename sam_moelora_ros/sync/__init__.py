"""Multi-sensor synchronisation: anchor-driven frame assembly with tolerances, waits and staleness.

:mod:`.config` holds the per-sensor settings, :mod:`.track` one sensor's buffered messages and
health, :mod:`.synchronizer` the policy that turns them into :class:`Frame` objects. No rclpy.
"""

from sam_moelora_ros.sync.config import SensorSpec, SyncConfig
from sam_moelora_ros.sync.synchronizer import Frame, Synchronizer
from sam_moelora_ros.sync.track import SensorStatus, SyncStatus

__all__ = ["Frame", "SensorSpec", "SensorStatus", "SyncConfig", "SyncStatus", "Synchronizer"]
