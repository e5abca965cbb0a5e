"""Launch the managed (lifecycle) perception node, configured and activated unless told not to.

    ros2 launch sam_moelora_ros perception_lifecycle.launch.py
    ros2 launch sam_moelora_ros perception_lifecycle.launch.py autostart:=false   # a manager
    ros2 lifecycle set /sam_moelora_perception configure    # then: activate, deactivate, ...

The node is ``perception_lifecycle_node`` (sam_moelora_ros/ros/lifecycle_node.py): it starts
unconfigured; configure loads the model, activate starts processing. With ``autostart:=true``
(default) this launch file asks for configure at once and for activate as soon as the node is
inactive; with ``autostart:=false`` the transitions are left to a lifecycle manager (nav2's
``lifecycle_manager`` with ``node_names: [sam_moelora_perception]``) or ``ros2 lifecycle set``.

Every other argument (params_file, namespace, log_level, use_sim_time, fastdds_profile, the topic
remappings) is perception.launch.py's, read from that file beside this one, so the two cannot
drift apart.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

import lifecycle_msgs.msg
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState

from launch import LaunchDescription


def _plain_launch() -> ModuleType:
    """perception.launch.py, installed beside this file (share/sam_moelora_ros/launch)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "perception.launch.py")
    spec = importlib.util.spec_from_file_location("sam_moelora_ros_perception_launch", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_launch_description() -> LaunchDescription:
    """perception.launch.py's arguments, ``autostart``, the lifecycle node and its transitions."""
    plain = _plain_launch()
    arguments = [
        entity
        for entity in plain.generate_launch_description().entities
        if isinstance(entity, DeclareLaunchArgument)
    ]
    arguments.append(
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            description="true: configure and activate the node at once; false: leave it "
            "unconfigured for a lifecycle manager or `ros2 lifecycle set`",
        )
    )
    node = LifecycleNode(executable="perception_lifecycle_node", **plain.node_options())
    autostart = IfCondition(LaunchConfiguration("autostart"))
    transition = lifecycle_msgs.msg.Transition

    def change(transition_id: int, condition: IfCondition | None = None) -> EmitEvent:
        return EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node), transition_id=transition_id
            ),
            condition=condition,
        )

    activate_when_inactive = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[change(transition.TRANSITION_ACTIVATE)],
        ),
        condition=autostart,
    )
    configure = change(transition.TRANSITION_CONFIGURE, autostart)
    return LaunchDescription([*arguments, node, activate_when_inactive, configure])
