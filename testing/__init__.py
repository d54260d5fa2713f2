"""Helpers shared by the tests (kept apart from the tests themselves, as pre-commit does)."""
