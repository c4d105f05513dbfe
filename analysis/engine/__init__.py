"""Engines that run the analysis past one process: ``dask`` runs every row-level stage on a Dask cluster."""
