"""The component code (部件编码) of a facility and its layout: 区划 (6 digits, GB/T 2260) +
大类 (2) + 小类 (2) + serial (6), 16 digits in all, as GB/T 30428.2 codes components.

The layout is read from public samples of the standard, not from its normative text (see
layers/README.md); the 大类 + 小类 of a facility type is its class_code in layers/.
"""

from __future__ import annotations

import re

COMPONENT_CODE_RE = re.compile(r"^\d{16}$")
# First two digits of a GB/T 2260 division code: the provinces, regions and municipalities.
PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
)


def looks_like_component_code(code: str | None) -> bool:
    """True for 16 digits: a code that claims the standard's layout and must then follow it."""
    return bool(code) and COMPONENT_CODE_RE.match(code) is not None


def component_code_problem(code: str, class_code: str) -> tuple[str, str] | None:
    """What is wrong with ``code`` as the component code of a type of ``class_code``, and how
    to fix it; None when it follows the layout."""
    if not COMPONENT_CODE_RE.match(code):
        return (
            f"'{code}' is not a component code: it must be 16 digits",
            "write 区划(6) + 大类(2) + 小类(2) + serial(6), e.g. 4101030102000001",
        )
    if int(code[:2]) not in PROVINCES or code[2:6] == "0000":
        return (
            f"'{code}' does not start with a county-level division code (GB/T 2260)",
            "start with the 6-digit code of the district, e.g. 410103 for 二七区",
        )
    if code[6:10] != class_code:
        return (
            f"'{code}' carries class {code[6:10]}, but its facility type is class {class_code}",
            f"put the type's 大类 + 小类 {class_code} in digits 7-10, or correct the type",
        )
    if code[10:] == "000000":
        return (
            f"'{code}' has the serial 000000",
            "number the components of a class from 000001",
        )
    return None
