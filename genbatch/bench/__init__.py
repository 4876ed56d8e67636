"""How many videos an hour, and what holds them back.

``run`` drives a synthetic table through ``genbatch run`` against a simulator
process and reports the figures; its analysis ("where the time goes") reads
any finished run's journal and log.
"""
