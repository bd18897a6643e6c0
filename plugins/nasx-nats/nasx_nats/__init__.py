"""NATS-Bench search spaces for nasx."""
