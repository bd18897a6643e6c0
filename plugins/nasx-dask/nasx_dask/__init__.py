"""nasx's Dask executor (``--executor dask``)."""
