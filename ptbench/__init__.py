"""ptbench: which backbone, adaptation strategy and regularization transfer best — with evidence."""

__version__ = "0.1.0"
