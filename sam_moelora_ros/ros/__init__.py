"""The ROS 2 adapters: the rclpy node, the DDS settings it runs with, its process supervisor.

:mod:`.node` imports rclpy; :mod:`.dds_profile` does not (it only prepares environment variables)
and neither does :mod:`.process` (starts, watches and stops the node as a child process).
"""
