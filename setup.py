"""ament_python build of sam_moelora_ros.

Runtime Python dependencies are listed in ``requirements.txt`` (pinned) and are installed by
``make venv``; on a robot, ROS 2 itself comes from the distribution, so the ``ros-*`` PyPI wheels
are deliberately *not* in ``install_requires`` (they live in ``requirements-dev.txt`` for CI).
"""

import os
from collections.abc import Sequence
from glob import glob

from setuptools import find_packages, setup
from setuptools.command.develop import develop

PACKAGE = "sam_moelora_ros"
HERE = os.path.dirname(os.path.abspath(__file__))

# training/ lives at the repository root but is installed inside the package's namespace, as
# sam_moelora_ros.training (run as ``python -m sam_moelora_ros.training.train``): a top-level
# ``training`` in site-packages collides with others' (sam2 installs one). The committed symlink
# sam_moelora_ros/training -> ../training puts it there for every build (wheel, colcon, and the
# develop mode of ``pip install -e`` and ``colcon build --symlink-install``, which cannot map a
# subpackage to another folder with ``package_dir``), so find_packages sees it as any subpackage.
if not os.path.isfile(os.path.join(HERE, PACKAGE, "training", "__init__.py")):
    raise SystemExit(
        f"{PACKAGE}/training must be a symlink to ../training; this checkout lost it (git "
        "core.symlinks=false?): run `ln -sfn ../training sam_moelora_ros/training`"
    )


class DevelopWithScriptsExecutable(develop):
    """``setup.py develop`` (what ``colcon build --symlink-install`` runs) with console scripts
    started by ``[build_scripts] executable`` of setup.cfg, as a regular install's are: develop
    writes them with the shebang of the interpreter that ran the build, which on a robot is often
    ``/usr/bin/python3`` (no torch) rather than the venv's python3 on PATH."""

    def write_script(
        self, script_name: str, contents: str | bytes, mode: str = "t", blockers: Sequence[str] = ()
    ) -> None:
        executable = self.distribution.get_option_dict("build_scripts").get("executable")
        if executable and isinstance(contents, str) and contents.startswith("#!"):
            contents = f"#!{executable[1]}\n" + contents.split("\n", 1)[1]
        elif executable and isinstance(contents, bytes) and contents.startswith(b"#!"):
            contents = f"#!{executable[1]}\n".encode() + contents.split(b"\n", 1)[1]
        return super().write_script(script_name, contents, mode, blockers)


setup(
    name=PACKAGE,
    cmdclass={"develop": DevelopWithScriptsExecutable},
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
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
            "perception_lifecycle_node = sam_moelora_ros.ros.lifecycle_node:main",
            "replay_eval = sam_moelora_ros.replay.cli:main",
            "replay_live = sam_moelora_ros.replay.live_cli:main",
            "bag_play = sam_moelora_ros.replay.bag_play:main",
            "sam_moelora_train = sam_moelora_ros.training.train:main",
            "sam_moelora_evaluate = sam_moelora_ros.training.evaluate:main",
            "sam_moelora_export = sam_moelora_ros.training.export:main",
        ],
    },
)
