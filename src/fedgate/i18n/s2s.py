"""Texts for the s2s layer."""

MESSAGES: dict[str, dict[str, str]] = {}
