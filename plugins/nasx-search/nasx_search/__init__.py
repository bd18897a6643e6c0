"""Search strategies and combiners for nasx."""
