"""Shared test set-up: figures never need a display, and tests never touch the user's cache."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
