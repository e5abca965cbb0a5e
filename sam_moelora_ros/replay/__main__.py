"""``python -m sam_moelora_ros.replay``: the same as the ``replay_eval`` console script."""

from __future__ import annotations

import sys

from sam_moelora_ros.replay.cli import main

sys.exit(main())
