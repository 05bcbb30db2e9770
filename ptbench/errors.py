"""User-facing errors: one line each, printed by the CLI without a traceback."""

from __future__ import annotations


class PtbenchError(Exception):
    """A mistake the user can fix (bad suite, unreachable store, missing data)."""


class SuiteError(PtbenchError):
    """A suite file with one or more problems, each naming its field path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class TrialError(Exception):
    """Raised inside a trial (NaN loss, …): the trial is FAILED, the run goes on."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), for one-line errors."""
    s = str(err).strip()
    return s.splitlines()[0][:limit] if s else type(err).__name__


def redact(url: str) -> str:
    """A URL with any password replaced, so credentials never reach logs or errors."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
