"""The isolation decision of conftest.py: run in a private namespace, else skip, or error in CI."""

from __future__ import annotations

import pytest
from ros_isolation import ERROR, RUN, SKIP, is_ci, verdict


@pytest.mark.parametrize(
    ("interfaces", "environ", "expected"),
    [
        (["lo"], {}, RUN),
        (["lo"], {"CI": "true"}, RUN),
        (["lo", "eth0"], {}, SKIP),
        (["lo", "eth0"], {"CI": "false"}, SKIP),
        (["lo", "eth0"], {"CI": "true"}, ERROR),
        (["lo", "wlan0"], {"CI": "1"}, ERROR),
        (["<ip unavailable>"], {"CI": "yes"}, ERROR),
        (["<ip unavailable>"], {"CI": ""}, SKIP),
    ],
)
def test_ci_errors_where_a_developer_skips(
    interfaces: list[str], environ: dict[str, str], expected: str
) -> None:
    assert verdict(interfaces, environ) == expected


def test_ci_values() -> None:
    assert is_ci({"CI": "True"}) and is_ci({"CI": "1"}) and is_ci({"CI": "github"})
    assert not is_ci({}) and not is_ci({"CI": "0"}) and not is_ci({"CI": "No"})
