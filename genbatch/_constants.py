"""Every tunable default of genbatch, in one place.

Each layer keeps its own section; a value lives here (not inline) so a reader
can see and change every default without hunting through modules.  Sections:
SIM (the offline simulator), CLIENT (HTTP client), ENGINE (batch producer).
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------
#: The two hosts of the GEN API, as the reference names them.
DEFAULT_API_URL: Final = "https://api.gen.pro/v1"
DEFAULT_AGENT_URL: Final = "https://agent.gen.pro/v1"

#: Seeded simulator identity: the demo key, workspace and agent every fresh
#: simulator knows, so `genbatch run --sim` works with no setup.
SIM_DEMO_API_KEY: Final = "gen_demo_key_0123456789"
SIM_DEMO_USER_ID: Final = 1
SIM_DEMO_WORKSPACE_ID: Final = 100
SIM_DEMO_AGENT_ID: Final = 1000
SIM_DEFAULT_HOST: Final = "127.0.0.1"
SIM_DEFAULT_PORT: Final = 8787

# --------------------------------------------------------------------------
# SIM — owned by genbatch/sim (add sim defaults below this line)
# --------------------------------------------------------------------------
#: A second, seeded workspace the demo key does NOT belong to: its agent and
#: engine answer 403 `forbidden` to the demo key (the reference's error table).
SIM_OTHER_API_KEY: Final = "gen_other_key_9876543210"
SIM_OTHER_USER_ID: Final = 2
SIM_OTHER_WORKSPACE_ID: Final = 200
SIM_OTHER_AGENT_ID: Final = 2000
#: The demo agent's own TikTok account (publish needs one).
SIM_DEMO_TIKTOK_URL: Final = "https://tiktok.com/@genbatch_demo"

#: CLI defaults of `genbatch sim`.  Rate/burst are per API key (token bucket);
#: GEN publishes no limit, so these are a plausible guess a user can change.
SIM_DEFAULT_RATE: Final = 50.0
SIM_DEFAULT_BURST: Final = 100
SIM_DEFAULT_CREDITS: Final = 10_000.0
SIM_DEFAULT_TIME_SCALE: Final = 1.0
SIM_DEFAULT_SEED: Final = 0

#: Credits charged per generation type (contract "Prices"); render included.
SIM_PRICES: Final[dict[str, float]] = {
    "text": 1.0,
    "image_from_text": 4.0,
    "video_from_text": 20.0,
    "video_from_image": 20.0,
    "video_from_ingredients": 20.0,
    "speech_from_text": 2.0,
    "lipsync": 10.0,
    "captions": 2.0,
    "media": 0.0,
    "render": 5.0,
}

#: Latency ranges in seconds at time_scale 1.0 (contract "Latency profile").
SIM_LATENCY: Final[dict[str, tuple[float, float]]] = {
    "text": (3.0, 7.0),
    "speech_from_text": (6.0, 14.0),
    "image_from_text": (12.0, 28.0),
    "video_from_text": (60.0, 120.0),
    "video_from_image": (60.0, 120.0),
    "video_from_ingredients": (60.0, 120.0),
    "lipsync": (40.0, 80.0),
    "captions": (5.0, 15.0),
    "media": (1.0, 2.0),
    "render": (25.0, 55.0),
    "publish_content": (5.0, 15.0),
    "train_social": (10.0, 30.0),
    "agent_run": (20.0, 40.0),
    "voice_preview": (3.0, 6.0),
}
#: Research runs take a fixed time per depth (seconds at scale 1.0).
SIM_RESEARCH_LATENCY: Final[dict[str, float]] = {"quick": 10.0, "default": 30.0, "deep": 90.0}
#: A job reads `pending` for this first fraction of its latency, then `processing`.
SIM_PENDING_FRACTION: Final = 0.10

#: Agent core limits from the reference (Step 1).
SIM_DESCRIPTION_MAX_CHARS: Final = 500
SIM_PERSONALITY_MAX_CHARS: Final = 20_000
#: Upload ceilings from the reference (Step 4): multipart vs direct upload.
SIM_MULTIPART_MAX_BYTES: Final = 50 * 1024 * 1024
SIM_DIRECT_UPLOAD_MAX_BYTES: Final = 1024 * 1024 * 1024
#: Lifetime of a presigned storage URL (seconds, wall clock, not scaled).
SIM_UPLOAD_URL_TTL: Final = 3600.0
#: Ideas per run when the message names no number, and the cap.
SIM_IDEAS_DEFAULT: Final = 5
SIM_IDEAS_MAX: Final = 20
#: Recent requests kept in the ledger's `log` (a ring; counters are unbounded).
SIM_LEDGER_LOG_SIZE: Final = 200
#: Page size of paginated list endpoints (templates, content resources).
SIM_PAGE_SIZE: Final = 50
#: Extension and content type of generated media per object type (matches sim.media).
SIM_MEDIA_EXT: Final[dict[str, str]] = {"video": "mp4", "image": "jpg", "audio": "m4a"}
SIM_MEDIA_TYPES: Final[dict[str, str]] = {
    "video": "video/mp4",
    "image": "image/jpeg",
    "audio": "audio/mp4",
}

#: Storage/CDN (sim/storage.py): path prefix of presigned upload URLs, the
#: streaming chunk (flat memory for 1 GiB bodies), and the share of a body a
#: `truncate` fault delivers before it drops the connection.
SIM_STORAGE_PREFIX: Final = "/_storage/uploads/"
SIM_STORAGE_CHUNK: Final = 1 << 20
SIM_TRUNCATE_FRACTION: Final = 0.5

# --------------------------------------------------------------------------
# CLIENT — owned by genbatch/client (add client defaults below this line)
# --------------------------------------------------------------------------
#: Environment variables the settings model reads.
CLIENT_ENV_API_KEY: Final = "GEN_API_KEY"
CLIENT_ENV_API_URL: Final = "GEN_API_URL"
CLIENT_ENV_AGENT_URL: Final = "GEN_AGENT_URL"
CLIENT_ENV_AUTH: Final = "GEN_AUTH"
#: Auth header scheme: the reference recommends X-API-Key; Bearer also works.
CLIENT_DEFAULT_AUTH: Final = "x-api-key"
CLIENT_USER_AGENT: Final = "genbatch/0.1"
#: Whole-request timeout for API calls (seconds); transfers use their own.
CLIENT_TIMEOUT: Final = 60.0
#: TCP connect (+ pool wait) timeout: a connect timeout proves nothing was sent.
CLIENT_CONNECT_TIMEOUT: Final = 10.0
#: Retries after the first attempt (so up to 1 + this many attempts).
CLIENT_MAX_RETRIES: Final = 4
#: Exponential backoff with full jitter: min(max, initial * 2**attempt) * U(0,1).
CLIENT_BACKOFF_INITIAL: Final = 0.5
CLIENT_BACKOFF_MAX: Final = 8.0
#: A server-given Retry-After longer than this is not slept on; it surfaces as a
#: RateLimitError carrying retry_after, so a batch can defer the work instead.
CLIENT_RETRY_AFTER_CAP: Final = 60.0
#: Connection pool: total sockets and per-host sockets (aiohttp TCPConnector).
CLIENT_POOL_LIMIT: Final = 100
CLIENT_POOL_LIMIT_PER_HOST: Final = 50
#: DNS cache TTL for the pooled connector (seconds).
CLIENT_DNS_TTL: Final = 300
#: Keys shorter than this are too short to mask by value without mangling logs
#: (header-based redaction still applies).
CLIENT_REDACT_MIN_SECRET_LEN: Final = 6
#: Transfer chunk: big enough for few executor hops, small enough for flat RSS.
CLIENT_TRANSFER_CHUNK: Final = 1 << 20
#: Read timeout between bytes of a transfer (no total: a 1 GiB file takes a while).
CLIENT_TRANSFER_SOCK_READ_TIMEOUT: Final = 60.0
#: Resumes (Range requests) a single download may make after short bodies.
CLIENT_DOWNLOAD_MAX_RESUMES: Final = 5
#: The reference: multipart "small files", direct upload "> 50 MB, up to 1 GB".
#: Decimal 50 MB for multipart (the stricter reading); 1 GiB for the hard cap.
CLIENT_MULTIPART_MAX_BYTES: Final = 50_000_000
CLIENT_DIRECT_UPLOAD_MAX_BYTES: Final = 1 << 30
#: wait() helpers: first poll delay, geometric growth, cap (seconds).
CLIENT_WAIT_INITIAL: Final = 1.0
CLIENT_WAIT_FACTOR: Final = 1.5
CLIENT_WAIT_MAX: Final = 10.0

# --------------------------------------------------------------------------
# ENGINE — owned by genbatch/engine (add engine defaults below this line)
# --------------------------------------------------------------------------
# --- input table (engine/table.py) ---
#: Rows per polars batch while streaming a table: bounds the Python objects
#: alive at once, whatever the table's length.
ENGINE_TABLE_BATCH_ROWS: Final = 2_000
#: A row_id names output files and journal keys; longer ids are a data error.
ENGINE_ROW_ID_MAX_CHARS: Final = 128
#: Longest recipe-variable value accepted (the reference's longest documented
#: text field, Agent Core `personality`, is 20,000 chars).
ENGINE_VALUE_MAX_CHARS: Final = 20_000

# --- safe output names (engine/naming.py) ---
#: UTF-8 bytes kept of a name's stem (ext4/APFS allow 255 per component; the
#: rest is headroom for the hash suffix, the extension and `.part`).
ENGINE_NAME_MAX_BYTES: Final = 120
#: Hex chars of the sha256 suffix that keeps sanitised names distinct.
ENGINE_NAME_HASH_CHARS: Final = 10
#: Output directory layout.
ENGINE_VIDEOS_DIR: Final = "videos"
ENGINE_JOURNAL_FILE: Final = "journal.sqlite"
ENGINE_LOCK_FILE: Final = ".genbatch.lock"

# --- recipes (engine/recipe.py) ---
#: Default download name pattern; `{column}` placeholders from the row.
ENGINE_DEFAULT_OUTPUT_NAME: Final = "{row_id}.mp4"
#: The template cell that carries the layer stack and gets rendered.
ENGINE_FINAL_VIDEO_CELL: Final = "final_video"
#: TikTok caption limit; a longer description fails the row before any spend.
ENGINE_PUBLISH_DESCRIPTION_MAX_CHARS: Final = 2_200

# --- the journey in bulk: agents apply, ideas, research, train (engine/agents_apply.py,
# engine/ideas_batch.py, engine/video_types.py, engine/journey_commands.py) ---
#: Agents read/compared/written at once (every call still passes the rate gate).
ENGINE_AGENTS_CONCURRENCY: Final = 8
#: Result table of `genbatch agents apply` (<stem>.parquet + <stem>.csv in --out).
ENGINE_AGENTS_RESULTS_STEM: Final = "agents_results"
#: Agent Core limits from the reference (Step 1), checked before anything is sent.
ENGINE_CORE_DESCRIPTION_MAX_CHARS: Final = 500
ENGINE_CORE_PERSONALITY_MAX_CHARS: Final = 20_000
#: Characters of an old/new value shown per field in a printed diff.
ENGINE_DIFF_VALUE_CHARS: Final = 72
#: Idea run message when neither --message nor the table gives one (the reference's).
ENGINE_IDEAS_DEFAULT_MESSAGE: Final = "Generate 5 content ideas grounded in this week trends"
#: A persistent preference is a run message starting with this (reference, Step 2).
ENGINE_REMEMBER_PREFIX: Final = "remember:"
#: Agents whose runs are in flight at once in `genbatch ideas|research`.
ENGINE_IDEAS_CONCURRENCY: Final = 16
#: Output files of `genbatch ideas` (ideas table), its per-run report, research, train.
ENGINE_IDEAS_STEM: Final = "ideas"
ENGINE_IDEAS_RUNS_STEM: Final = "idea_runs"
ENGINE_RESEARCH_STEM: Final = "research"
ENGINE_TRAIN_RESULTS_STEM: Final = "train_results"
#: row_id of an idea in the ideas table: this prefix + the idea id (stable across reruns).
ENGINE_IDEA_ROW_PREFIX: Final = "idea-"
#: Give up waiting on one run/job after this long (deep research takes ~90 s).
ENGINE_RUN_MAX_WAIT: Final = 900.0
#: Poll-hub seed (seconds at time scale 1) per research depth: the duration
#: the reference's depths suggest (quick, default, deep).
ENGINE_RESEARCH_POLL_SEED_SECONDS: Final[dict[str, float]] = {
    "quick": 10.0,
    "default": 30.0,
    "deep": 90.0,
}
#: A poll of a run or job that failed after the client's retries is watched
#: again this many times before the run/job is reported failed.
ENGINE_RUN_WATCH_ATTEMPTS: Final = 3
#: Times one run may ask for approval again after --approve answered it.
ENGINE_RUN_MAX_APPROVALS: Final = 3
#: Template for an idea whose video type is "any", missing or unknown: narrated
#: VO over b-roll needs only a hook and a script, which every idea has.
ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE: Final = "tiktok-vo-broll"

# --- rate gate and concurrency caps (engine/limits.py) ---
#: Requests/second per host when neither --rate nor the server says otherwise.
ENGINE_RATE_DEFAULT: Final = 10.0
#: Back-to-back requests allowed after idle time.  1 = strictly spaced, which
#: never trips a server token bucket whose rate is at least ours.
ENGINE_RATE_BURST: Final = 1.0
#: ... and at most this many seconds of the gate's current rate (>= 1): a
#: server bucket smaller than our burst 429s whatever our rate, and at low
#: rates spacing costs nothing (timer lateness only matters at high rates).
ENGINE_RATE_BURST_SECONDS: Final = 0.01
#: Floor of the adaptive rate (requests/second) however many 429s arrive.
ENGINE_RATE_MIN: Final = 0.5
#: Multiplicative decrease of the measured send rate on a 429 when the
#: server's delivered rate does not pin its limit yet (far above it).
ENGINE_RATE_DECREASE: Final = 0.5
#: Once the limit is pinned (successes between two 429s per second), restart
#: at this fraction of it: just under, so the next 429 waits for a probe.
ENGINE_RATE_MARGIN: Final = 0.95
#: Seconds for the rate to climb back to its anchor after a 429 (CUBIC's K);
#: it then probes above: +ENGINE_RATE_PROBE of the anchor after another K.
ENGINE_RATE_RECOVERY_SECONDS: Final = 4.0
ENGINE_RATE_PROBE: Final = 0.5
#: Window (seconds) over which the send rate at a 429 is measured.
ENGINE_RATE_WINDOW: Final = 1.0
#: Pause assumed when a 429 carries no Retry-After (seconds).
ENGINE_RETRY_AFTER_DEFAULT: Final = 1.0
#: Caps on work in flight; rows-in-flight bounds memory however long the table.
ENGINE_ROWS_IN_FLIGHT: Final = 256
ENGINE_CAP_GENERATIONS: Final = 512
ENGINE_CAP_RENDERS: Final = 128
ENGINE_CAP_UPLOADS: Final = 4
ENGINE_CAP_DOWNLOADS: Final = 8

# --- credits (engine/credits.py) ---
#: Package-data pricing table (genbatch/recipes/), user-overridable.
ENGINE_PRICING_FILE: Final = "pricing.toml"

# --- poll hub (engine/poller.py) ---
#: Expected seconds to completion per job kind at time_scale 1.0 (the middle
#: of the documented latency ranges); learning replaces them within a run.
ENGINE_POLL_SEED_SECONDS: Final[dict[str, float]] = {
    "text": 5.0,
    "speech_from_text": 10.0,
    "image_from_text": 20.0,
    "video_from_text": 90.0,
    "video_from_image": 90.0,
    "video_from_ingredients": 90.0,
    "lipsync": 60.0,
    "captions": 10.0,
    "media": 1.5,
    "render": 40.0,
    "publish_content": 10.0,
    "train_social": 20.0,
    "agent_run": 30.0,
}
#: Seed for a kind not listed above.
ENGINE_POLL_SEED_DEFAULT: Final = 30.0
#: The first poll aims at this quantile of the kind's learned completion
#: times when the rate gate is busy (polls displace new work), and at the
#: tight one when the gate has slack (polls are free; detection delay falls).
ENGINE_POLL_FIRST_QUANTILE: Final = 0.85
ENGINE_POLL_TIGHT_QUANTILE: Final = 0.4
#: Completion times kept per kind (a random sample of recent jobs; their
#: quantiles drive the schedule).  A prior of evenly spread points over seed x (1 +/- spread)
#: fills the window until real jobs push it out.
ENGINE_POLL_WINDOW: Final = 128
ENGINE_POLL_PRIOR_POINTS: Final = 8
ENGINE_POLL_PRIOR_SPREAD: Final = 1 / 3
#: A job done at its first poll is recorded at this fraction of that time
#: (it finished somewhere before), so a first poll set too late walks down.
ENGINE_POLL_HIT_SHRINK: Final = 0.8
#: After a miss inside the likely window (below this quantile), the next poll
#: comes STEP x the job's elapsed time later: a job is seen within ~STEP of
#: its duration.  Past the window the interval grows by the factor, within
#: [min, max] seconds (x scale).
ENGINE_POLL_WINDOW_END_QUANTILE: Final = 0.97
ENGINE_POLL_STEP: Final = 0.1
ENGINE_POLL_BACKOFF_FACTOR: Final = 1.6
ENGINE_POLL_MIN_INTERVAL: Final = 0.5
ENGINE_POLL_MAX_INTERVAL: Final = 30.0
#: Rate-gate slack (1 - used share of its rate, measured over this many
#: seconds): at or below LOW polls use the busy quantile, at or above HIGH
#: the tight one, in between a blend.  Without a gate to watch, DEFAULT.
ENGINE_POLL_SLACK_SECONDS: Final = 1.0
ENGINE_POLL_SLACK_LOW: Final = 0.15
ENGINE_POLL_SLACK_HIGH: Final = 0.5
ENGINE_POLL_DEFAULT_SLACK: Final = 0.0
#: Relative jitter (+/-) on every delay, so jobs started together spread out.
ENGINE_POLL_JITTER: Final = 0.1
#: Polls running concurrently; bounds tasks alive however many jobs wait.
ENGINE_POLL_MAX_INFLIGHT: Final = 64

# --- run, results, progress, CLI (engine/runner.py, results.py, progress.py, commands.py) ---
#: Output files next to videos/ and the journal.
ENGINE_RESULTS_CSV: Final = "results.csv"
ENGINE_RESULTS_PARQUET: Final = "results.parquet"
ENGINE_RUN_LOG: Final = "run.log"
#: Where `genbatch run TABLE` writes when --out is not given: outputs/<table stem>/.
ENGINE_DEFAULT_OUT_ROOT: Final = "outputs"
#: Tries per generation/render when the job itself ends failed (each one a new
#: intent with a new key; a failed job is refunded, so a retry pays once more).
ENGINE_MAX_GENERATION_ATTEMPTS: Final = 3
#: Tries per row step that failed for a transient reason (5xx after client
#: retries, connection lost, truncated download) before the row fails.
ENGINE_MAX_STEP_ATTEMPTS: Final = 4
#: Pause before re-trying such a step (seconds; doubled per try).
ENGINE_STEP_RETRY_DELAY: Final = 0.5
#: Live progress refresh (TTY) and plain progress line interval (not a TTY).
ENGINE_PROGRESS_REFRESH: Final = 0.5
ENGINE_PROGRESS_PLAIN_INTERVAL: Final = 5.0
#: `--sim` defaults: time scale fast enough for a demo (a 90 s video takes
#: ~0.9 s) and the in-process simulator's rate, which the run then also uses.
ENGINE_SIM_TIME_SCALE: Final = 0.01
ENGINE_SIM_RATE: Final = 50.0
#: Burst of the run's rate gates (requests).  A strictly spaced gate (burst 1)
#: loses every timer wake-up's lateness: measured 313 req/s at a nominal 400.
#: 4 reaches the nominal rate and stays far below any server bucket we know
#: of (the simulator's default burst is 2x its rate); AIMD covers the rest.
ENGINE_RUN_RATE_BURST: Final = 4.0
#: A Retry-After longer than this (seconds) is not believed: one absurd value
#: ("3600") must not park the whole run.  The gate pauses for
#: ENGINE_RETRY_AFTER_DEFAULT instead and the step is tried again a bounded
#: number of times.  Same bound as the client's own (CLIENT_RETRY_AFTER_CAP).
ENGINE_RETRY_AFTER_MAX: Final = 60.0
#: A scheduled post is waited for (to report its post_id) only when it is due
#: within this many seconds of wall time; later ones complete the row with
#: the publish job's id, instead of holding a row slot for days.
ENGINE_PUBLISH_WAIT_MAX: Final = 900.0
#: Free reads that decide money — polls of a paid job, the reconcile read of
#: an in-doubt POST — are retried through an outage for this long (seconds,
#: wall clock) before the row is left pending for the next run to resume.
ENGINE_OUTAGE_MAX: Final = 3600.0
#: `genbatch demo`: the bundled table and where its outputs go.
ENGINE_DEMO_TABLE: Final = "inputs/demo.csv"
ENGINE_DEMO_OUT: Final = "outputs/demo"

# --- bench (engine/bench.py, engine/bench_commands.py) ---
#: `genbatch bench` defaults: a synthetic table of this many rows through this
#: starter template's default recipe, against a simulator process with the
#: simulator's own default rate/burst and a time scale that keeps 1,000 rows
#: to a few minutes (a 90 s video takes 0.9 s).
ENGINE_BENCH_ROWS: Final = 1_000
ENGINE_BENCH_TEMPLATE: Final = "tiktok-vo-broll"
ENGINE_BENCH_RATE: Final = SIM_DEFAULT_RATE
ENGINE_BENCH_BURST: Final = SIM_DEFAULT_BURST
ENGINE_BENCH_TIME_SCALE: Final = 0.01
#: Starting balance of the bench simulator: credits must never be the limit.
ENGINE_BENCH_CREDITS: Final = 1e12
#: Where a bench writes when --out is not given: outputs/bench/<timestamp>/.
ENGINE_BENCH_OUT_ROOT: Final = "outputs/bench"
#: Files a bench leaves in its output dir next to the run's own.
ENGINE_BENCH_TABLE_FILE: Final = "bench_table.csv"
ENGINE_BENCH_LEDGER_FILE: Final = "bench_ledger.json"
ENGINE_BENCH_REPORT_FILE: Final = "bench.json"
ENGINE_BENCH_SIM_LOG: Final = "bench_sim.log"
#: Seconds to wait for the simulator process to print its address.
ENGINE_BENCH_SIM_START_TIMEOUT: Final = 30.0
#: Achieved request rate / limit at or above which the rate limit is named
#: the bottleneck (a strictly spaced gate never quite reaches 100 %).
ENGINE_BENCH_RATE_BOUND: Final = 0.85
