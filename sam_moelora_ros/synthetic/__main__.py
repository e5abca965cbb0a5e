"""``python -m sam_moelora_ros.synthetic``: see :mod:`sam_moelora_ros.synthetic.cli`."""

from __future__ import annotations

import sys

from sam_moelora_ros.synthetic.cli import main

if __name__ == "__main__":
    sys.exit(main())
