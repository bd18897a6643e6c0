"""The DARTS cell space for nasx."""
