"""Texts for the cli layer."""

MESSAGES: dict[str, dict[str, str]] = {}
