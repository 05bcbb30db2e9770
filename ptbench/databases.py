"""What a database URL's driver takes, for the two stores that open one (Optuna's RDB storage,
MLflow's tracking database): one rule, so a storage and a tracking store fail alike."""

from __future__ import annotations

CONNECT_TIMEOUT = 10  # seconds before a server that accepts and never answers is given up


def connect_args(url: str) -> dict:
    """``connect_timeout`` for psycopg (3 or 2) unless the URL sets its own: a server that
    accepts the connection and never answers (a firewall, a stopped VM) held every command for
    ever. Other drivers name it otherwise: nothing for them."""
    driver = url.split("://")[0]
    psycopg = driver in ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
    return {"connect_timeout": CONNECT_TIMEOUT} if psycopg and "connect_timeout=" not in url else {}
