"""Bulk agent work — Steps 1 and 2 of the API, a table at a time.

``apply`` (agents from a table: read, compare, write), ``ideas`` (idea runs,
the ideas table ``genbatch run`` reads), ``video_types`` (idea video type →
starter template).  Built on the engine's limits and poll hub; knows nothing
of argv (that is :mod:`genbatch.cli`).
"""
