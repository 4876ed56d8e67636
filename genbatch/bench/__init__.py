"""How many videos an hour, and what holds them back.

``run`` drives a synthetic table through ``genbatch run`` against a simulator
process (started by :mod:`genbatch.sim.launch`); ``report`` turns what it
leaves behind into the figures; ``analysis`` ("where the time goes") reads
any finished run's journal and log; ``stats`` holds their small statistics.
"""
