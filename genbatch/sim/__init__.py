"""Offline GEN simulator: both GEN hosts on one aiohttp port, stateful and seeded.

Use :class:`genbatch.sim.serve.SimServer` in-process or ``genbatch sim`` as a
process; tests, the demo and the benchmarks all stand on it.
"""
