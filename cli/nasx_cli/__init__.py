"""Command-line interface of nasx."""
