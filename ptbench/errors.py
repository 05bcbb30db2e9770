"""User-facing errors: one line each, printed by the CLI without a traceback."""

from __future__ import annotations

import re


class PtbenchError(Exception):
    """A mistake the user can fix (bad suite, unreachable store, missing data)."""


class NoStore(PtbenchError):
    """A read-only command found no tracking store where the suite's would be."""


class SuiteError(PtbenchError):
    """A suite file with one or more problems, each naming its field path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class TrialError(Exception):
    """Raised inside a trial (NaN loss, …): the trial is FAILED, the run goes on."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), for one-line errors; passwords
    in it masked (a driver's or MLflow's message may quote the URL it could not open)."""
    s = str(err).strip()
    return redact(s.splitlines()[0])[:limit] if s else type(err).__name__


_URL = re.compile(r"[A-Za-z][\w+.-]*://[^\s'\"]+")


_SECRET_PARAM = re.compile(r"(?i)([?&](?:password|passwd|pwd|sslpassword|token|secret)=)[^&#\s]+")


def _mask(url: str) -> str:
    url = _SECRET_PARAM.sub(r"\1***", url)  # postgresql://u@db/x?password=…
    scheme, rest = url.split("://", 1)
    if "@" not in rest:
        return url
    creds, host = rest.rsplit("@", 1)  # a password may hold "@" or "/"; a host holds neither
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}:***@{host}" if colon else f"{scheme}://***@{host}"


def redact(text: str) -> str:
    """A URL — or any text holding URLs, such as a suite file — with every password (and a
    bare token in the user part) replaced, so credentials never reach logs, artifacts or errors."""
    return _URL.sub(lambda m: _mask(m[0]), text)
