"""Shared fixtures. Area fixtures live in their own plugin modules listed here."""

from __future__ import annotations

pytest_plugins = ["simfixtures"]
