"""``python -m sam_moelora_ros.export``: see :mod:`sam_moelora_ros.export.cli`."""

from __future__ import annotations

import sys

from sam_moelora_ros.export.cli import main

if __name__ == "__main__":
    sys.exit(main())
