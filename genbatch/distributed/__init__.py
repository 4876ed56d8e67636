"""``genbatch run --ray``: one table in shards on a Ray cluster, one budget per API key.

Why: one process is enough for one workspace (its rate limit is the ceiling),
but an agency runs many workspaces' batches from one table, a million-row night
needs more disk and downloads than one box, and a node that dies at 3 a.m. must
not stop the batch.  Ray already runs those clusters; genbatch runs on one
rather than growing a distributed layer of its own.

How it fits together:

* :mod:`.partition` — rows to shards: by API key (column ``api_key_env``,
  naming the env var that holds a row's key; none: ``GEN_API_KEY``), then by
  contiguous row ranges; the assignment is kept so a row's journal never moves.
* :mod:`.shard` — a Ray task running the ordinary engine
  (:func:`genbatch.engine.runner.execute`) on its rows into ``OUT/shards/<k>/``
  with its own journal; Ray runs it again when its worker dies
  (``max_retries``) and it resumes from that journal.
* :mod:`.budget` and :mod:`.actor` — one async Ray actor per API key holding
  the key's rate gate and ``--max-credits``; shards lease tokens and credits in
  batches and give back what they did not use, so the actor is on no request's
  path.
* :mod:`.merge` — videos linked into ``OUT/videos/``, one ``OUT/results.*``,
  and :func:`~genbatch.distributed.merge.sharded_status` for ``genbatch status``.
* :mod:`.cluster` — joining a cluster, or a private Ray kept on loopback.
* :mod:`.driver` — the whole run.

Rate discovery with shards.  The key's actor owns the one
:class:`~genbatch.engine.limits.RateGate` — the very gate a single process
runs, so discovery is the same (docs/design.md §5): told ``--rate``, it is a
ceiling; untold, it takes a published ``RateLimit-Policy`` at once, otherwise
slow-starts while the shards take what it issues, then CUBIC after the first
sign of overload.  Every token a shard spends was issued through that gate (a
lease of N tokens passes it N times), so the gate measures the key's real send
rate.  Shards report what the server answered — successes with light-answer
latencies, 5xx, 429s with their Retry-After and age, a published limit — with
each lease, and a 429 or a newly published limit at once; the actor feeds them
to the gate as if the answers had come to it (one cut per overload, whoever
saw it).  A pause or a new rate bumps the shared state's version; each shard
long-polls it and stops at once on a pause (dropping the tokens it holds,
which after a pause would be a burst).  Each shard paces its own sends at its
share of the rate, split by demand, so the shards' sum stays under the gate's
rate over short windows too, not only on average.  With ``--max-credits``, the
actor holds the cap (per key: each workspace's own budget) and shards hold
allowances out of it (see :mod:`.budget`).

Layers: this package imports the engine (and the standard library, polars and,
inside functions only, Ray); only the command line imports it.
"""

from __future__ import annotations

__all__: list[str] = []
