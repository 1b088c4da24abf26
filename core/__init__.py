"""What every side of the project shares: the store contract, configs, image decoding and the error base.

It imports nothing from pipeline/, training/, explainers/ or benchmarks/, so training/ can read a
store without pulling in Ray, dask or numba.
"""
