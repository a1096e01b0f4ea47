"""The one escaping rule for every spreadsheet cell qrtrace writes (CSV and XLSX; API, CLI and demo).

Identifiers come from scanners, and a scanner can send `=cmd|'/c calc'!A0` as a person id: a spreadsheet
opening the call list would run it. Every writer of a cell goes through `safe_cell`; `private_file`
opens a file only its owner can read, for anything that holds identifiers."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_CONTROL = dict.fromkeys([*range(32), 127])
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """Text as a spreadsheet shows it, never run: control characters dropped (XLSX cannot hold them) and
    text that a spreadsheet would read as a formula (=, +, -, @ first) prefixed with an apostrophe."""
    if not isinstance(value, str):
        return value
    text = value if value.isprintable() else value.translate(_CONTROL)  # the check is the fast path
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def safe_row(row: Iterable[object]) -> list[object]:
    """`safe_cell` over a row."""
    return [safe_cell(v) for v in row]


@contextmanager
def private_file(path: Path, mode: str = "w", **kwargs: object) -> Iterator[IO]:
    """Write `path` atomically (a temporary beside it, then rename) with mode 0600 from the first byte:
    files holding identifiers or phone numbers are never readable by other users, not even briefly."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older temporary may exist with another mode: O_CREAT keeps it
    try:
        with open(fd, mode, **kwargs) as fh:  # type: ignore[call-overload]
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
