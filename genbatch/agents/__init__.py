"""Bulk agent work — Steps 1 and 2 of the API, a table at a time.

One concept per module:

* ``agents_table`` — the agents table ``apply`` reads: parsed and checked locally;
* ``apply`` — Agent Core for many agents from that table (read, compare, write);
* ``runs`` — one agent run: start, wait, approve; the runs report;
* ``ideas`` — idea runs for many agents, and the ideas table ``genbatch run`` reads;
* ``research`` — standalone research per agent and topic;
* ``train`` — ``train_social`` scraping jobs from a table of sources;
* ``tables`` — the tables these write (typed Parquet + CSV rows), cell reading
  and row-problem messages;
* ``video_types`` — idea video type → starter template.

Built on the engine's limits, poll hub (:class:`genbatch.engine.watch.HubWatcher`)
and table writer; knows nothing of argv (that is :mod:`genbatch.cli`).
"""
