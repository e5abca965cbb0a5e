"""Launch the sam_moelora_ros perception node with a parameter file and topic remappings.

    ros2 launch sam_moelora_ros perception.launch.py
    ros2 launch sam_moelora_ros perception.launch.py params_file:=/path/robot.yaml \
        rgb_topic:=/front/color/image_raw camera_info_topic:=/front/color/camera_info \
        depth_topic:=/front/depth/image_rect_raw lidar_topic:=/velodyne_points
    ros2 launch sam_moelora_ros perception.launch.py use_sim_time:=true   # simulator, bag --clock

Every input is subscribed under the name the parameter file gives (defaults in
config/perception.yaml) and remapped here to the robot's topic, so the YAML stays generic and a
robot needs only launch arguments. Outputs are private topics of the node
(``/<namespace>/sam_moelora_perception/labels`` ...) and can be remapped the same way.

``use_sim_time:=true`` sets the node's standard ``use_sim_time`` parameter (over the parameter
file's): its clock then follows /clock (rosgraph_msgs/Clock from a simulator or
``ros2 bag play --clock``), and so do everything it times on the receive clock (sensor waits,
staleness, anchor fallback, diagnostics and their stamps). Message stamps are never compared with
the wall clock.

Fast DDS: the node gets config/fastdds_large_messages.xml (a shared-memory segment that fits
image-sized messages) unless the environment already names a profile; ``fastdds_profile:=...``
picks another file. Start the camera and LiDAR drivers with the same profile (README,
"Large messages over Fast DDS"): the segment that matters is the publisher's.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription
from sam_moelora_ros.ros.dds_profile import PROFILE_ENV_VARS, profile_env_var

PACKAGE = "sam_moelora_ros"

# (launch argument, the node's topic name in config/perception.yaml, help)
REMAPPINGS = (
    ("rgb_topic", "camera/image", "RGB camera image (sensor_msgs/Image)"),
    ("depth_topic", "depth/image", "Depth image, 16UC1 mm or 32FC1 m (sensor_msgs/Image)"),
    ("event_topic", "event/image", "Event frame (Image) or event cloud (PointCloud2)"),
    ("lidar_topic", "lidar/points", "LiDAR point cloud (sensor_msgs/PointCloud2)"),
    ("camera_info_topic", "camera/camera_info", "CameraInfo of the RGB camera"),
    ("labels_topic", "~/labels", "Output: class ids (mono8 / 16UC1)"),
    ("labels_color_topic", "~/labels_color", "Output: palette image (rgb8)"),
    ("confidence_topic", "~/confidence", "Output: max softmax probability (32FC1)"),
)


def node_options() -> dict:
    """Everything but the executable, shared with perception_lifecycle.launch.py's node."""
    return {
        "package": PACKAGE,
        "name": "sam_moelora_perception",
        "namespace": LaunchConfiguration("namespace"),
        # later entries win: the launch argument overrides a use_sim_time in the params file
        "parameters": [
            LaunchConfiguration("params_file"),
            {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)},
        ],
        "remappings": [(topic, LaunchConfiguration(arg)) for arg, topic, _ in REMAPPINGS],
        "arguments": ["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        # the one variable this distribution's Fast DDS reads (the other draws warnings)
        "additional_env": {
            profile_env_var(os.environ.get("ROS_DISTRO")): LaunchConfiguration("fastdds_profile")
        },
        "output": "screen",
        "emulate_tty": True,
    }


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the one node."""
    config = os.path.join(get_package_share_directory(PACKAGE), "config")
    default_params = os.path.join(config, "perception.yaml")
    shipped_profile = os.path.join(config, "fastdds_large_messages.xml")
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=default_params,
            description="Node parameters (see config/perception.yaml for every one)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="Node namespace"),
        DeclareLaunchArgument(
            "log_level", default_value="info", description="debug | info | warn | error"
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            description="true: the node's clock follows /clock (simulator, ros2 bag play --clock)",
        ),
        DeclareLaunchArgument(
            "fastdds_profile",
            # a profile already named in the environment wins over the shipped one
            default_value=EnvironmentVariable(
                PROFILE_ENV_VARS[0],
                default_value=EnvironmentVariable(
                    PROFILE_ENV_VARS[1], default_value=shipped_profile
                ),
            ),
            description="Fast DDS XML profile for the node (default: the shipped one)",
        ),
    ]
    arguments += [
        DeclareLaunchArgument(arg, default_value=topic, description=text)
        for arg, topic, text in REMAPPINGS
    ]
    node = Node(executable="perception_node", **node_options())
    return LaunchDescription([*arguments, node])
