"""ament_python build of sam_moelora_ros.

Runtime Python dependencies are listed in ``requirements.txt`` (pinned) and are installed by
``make venv``; on a robot, ROS 2 itself comes from the distribution, so the ``ros-*`` PyPI wheels
are deliberately *not* in ``install_requires`` (they live in ``requirements-dev.txt`` for CI).
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sam_moelora_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    # training/ lives at the repository root (``python -m training.train`` from a checkout) but is
    # installed inside the package's namespace, as sam_moelora_ros.training: a top-level
    # ``training`` in site-packages would collide with any other project's.
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"])
    + [f"{PACKAGE}.training"]
    + [f"{PACKAGE}.{name}" for name in find_packages(include=["training.*"])],
    package_dir={f"{PACKAGE}.training": "training"},
    package_data={
        f"{PACKAGE}.training": ["configs/*.yaml"],
        PACKAGE: [
            "py.typed",
            "models/*.safetensors",
            "models/*.json",
            "models/*.md",
            "resources/*.xml",
        ],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        # visualisation: RViz 2 config for the live node, Foxglove layout for replay's labels_bag
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
        (f"share/{PACKAGE}/foxglove", glob("foxglove/*.json")),
        (
            f"share/{PACKAGE}/config",
            [p for p in glob("config/*") if not p.endswith("/")]
            + [f"{PACKAGE}/resources/fastdds_large_messages.xml"],
        ),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="sam_moelora_ros maintainers",
    maintainer_email="maintainers@sam-moelora-ros.invalid",
    description="SAM with a Mixture of LoRA Experts for multi-modal semantic segmentation on ROS 2",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "model_summary = sam_moelora_ros.model.summary:main",
            "perception_node = sam_moelora_ros.ros.node:main",
            "replay_eval = sam_moelora_ros.replay.cli:main",
            "replay_live = sam_moelora_ros.replay.live_cli:main",
            "bag_play = sam_moelora_ros.replay.bag_play:main",
            "sam_moelora_train = sam_moelora_ros.training.train:main",
            "sam_moelora_evaluate = sam_moelora_ros.training.evaluate:main",
            "sam_moelora_export = sam_moelora_ros.training.export:main",
        ],
    },
)
