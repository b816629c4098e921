"""Texts for the ops layer."""

MESSAGES: dict[str, dict[str, str]] = {}
