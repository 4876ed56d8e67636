"""The batch producer: rows in, videos out.  Knows rows, not HTTP details.

Building blocks, one concern each: ``table`` (read and validate the input),
``recipe`` (what to do with a row), ``naming`` (safe output names),
``journal`` (durable intents and row states), ``limits`` (rate and
concurrency gates), ``credits`` (budget), ``poller`` (one scheduler for every
pending job).
"""
