"""Reusable test suites and fixtures for nasx components (running the suites needs pytest; importing them does not)."""
