"""PSSL label pipeline: index images, explain classifiers on Ray, fuse explanations with dask."""
