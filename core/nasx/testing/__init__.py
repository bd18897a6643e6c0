"""Reusable test suites and fixtures for nasx components (import from tests only; needs pytest)."""
