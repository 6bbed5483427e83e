"""Failures of the machine rather than of hoprec or its input: a full disk, a path that cannot
be written or created. They stop the command with one line that names the path and what to do,
never a traceback, and never count as a bad input file (every later file would fail the same
way)."""

from __future__ import annotations

import errno
import json
import re

import duckdb

# errno -> what it means for the user; DuckDB reports the same faults as message text
_ERRNO_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}
_DUCKDB_SIGNS = {
    "No space left on device": "the disk is full",
    "Disk quota exceeded": "the disk quota is used up",
    "Permission denied": "permission denied",
    "Read-only file system": "the file system is read-only",
}
ADVICE = (
    "nothing of the failed step was committed; fix that (free space, or set HOPREC_HOME / "
    "HOPREC_WAREHOUSE to a writable disk) and run the command again"
)


def environment_problem(exc: BaseException) -> str | None:
    """One line for a machine fault (what happened, where, and what to do), else None."""
    if isinstance(exc, OSError) and exc.errno in _ERRNO_WORDS:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{_ERRNO_WORDS[exc.errno]}{where}: {exc.strerror}; {ADVICE}"
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        for sign, words in _DUCKDB_SIGNS.items():
            if sign in text:
                return f"{words}: {_duckdb_detail(text)}; {ADVICE}"
    return None


def _duckdb_detail(text: str) -> str:
    """DuckDB's own sentence: the `exception_message` of a JSON payload if there is one (async
    writes report so), else the first line without the "IO Error: " prefix."""
    found = re.search(r"\{.*\}", text)
    if found:
        try:
            return str(json.loads(found.group(0))["exception_message"])
        except (ValueError, KeyError, TypeError):
            pass
    return text.splitlines()[0].split("Error: ", 1)[-1]


class EnvironmentProblem(RuntimeError):
    """A machine fault, worded by `environment_problem`."""


def raise_if_environment(exc: BaseException) -> None:
    """Re-raise a machine fault as an EnvironmentProblem (chained), so it is not taken for a
    bad input and reaches the user as one line."""
    words = environment_problem(exc)
    if words:
        raise EnvironmentProblem(words) from exc
