"""Every guess the simulator makes where GEN-API.md is silent, in one place.

A person with access to the real API corrects the sim here first (then the
code each entry names).  Each entry is ``(topic, text)`` and its text starts
with ``ASSUMPTION:`` so ``grep -r ASSUMPTION`` finds them all.  The client
keeps its own list (DESIGN §3); the two should agree.
"""

from __future__ import annotations

ASSUMPTIONS: tuple[tuple[str, str], ...] = (
    # ---- wire shapes ------------------------------------------------------
    (
        "ids",
        "ASSUMPTION: ids are JSON integers; each kind has its own range (engines 50001+, "
        "cells 1000001+, generations 701+...) so an id sent in the wrong place 404s "
        "(world.ID_START).",
    ),
    (
        "lists",
        "ASSUMPTION: list endpoints answer a bare JSON array (as the templates example "
        "shows), paginated by ?page=&per_page= where the reference says 'paginated'.",
    ),
    (
        "created",
        "ASSUMPTION: creating POSTs answer 201 (generate/render, clone, user_jobs, agent "
        "run, research, rows, columns, layers, uploads); voice preview answers 202.",
    ),
    (
        "timestamps",
        "ASSUMPTION: timestamps are ISO 8601 UTC with milliseconds and 'Z'; the "
        "admin ledger uses epoch seconds instead.",
    ),
    (
        "errors",
        "ASSUMPTION: besides the reference's codes the sim answers 429 rate_limited, "
        "500 internal_error, 503 service_unavailable, 405 method_not_allowed, 501 not_implemented.",
    ),
    # ---- access -------------------------------------------------------------
    (
        "agent_id",
        "ASSUMPTION: an agent_id (query, body, or the :agent_id path segment) that does "
        "not exist is 422 agent_not_found; /v1/agents/:id with an unknown id is 404 not_found.",
    ),
    (
        "forbidden",
        "ASSUMPTION: an agent, engine, generation, job or resource of a workspace the "
        "key's user is not in is 403 forbidden; an engine of another agent of the same "
        "workspace is 404 not_found.",
    ),
    (
        "keys",
        "ASSUMPTION: every --api-key maps to the demo user; persisted tokens created through "
        "the API authenticate until revoked; revoke_all revokes persisted tokens only.",
    ),
    # ---- agent core -------------------------------------------------------
    (
        "core-422",
        "ASSUMPTION: unknown fields, description > 500 chars and personality > 20000 "
        "chars reject the whole PATCH (422, nothing applied); if every section fails, "
        "it is 422 too.",
    ),
    (
        "core-207",
        "ASSUMPTION: otherwise each field is a section validated alone; the answer is "
        "the flat core (GET shape) and, on 207, an 'errors' object {section: {error, error_code}}.",
    ),
    (
        "core-values",
        "ASSUMPTION: linked_accounts platforms are tiktok/instagram/youtube; monitored "
        "item_type is account/hashtag/keyword; keywords lose a leading '#'; default_user_voice "
        "must name a voice in the agent's library.",
    ),
    # ---- agent runs, ideas ------------------------------------------------
    (
        "runs",
        "ASSUMPTION: a run message starting 'remember:' stores a preference; one naming "
        "delete/publish pauses in awaiting_approval; one naming 'idea N' in a conversation "
        "refines; one mentioning ideas generates (first number in it, default 5, max 20); "
        "anything else is chat.",
    ),
    (
        "run-read",
        "ASSUMPTION: GET /agent/runs/:id carries run_id and id, kind, pending_action "
        "and result (ideas runs: the ideas themselves plus idea_ids and message_id).",
    ),
    (
        "messages",
        "ASSUMPTION: messages are {id, role, content, run_id, ideas[], created_at}; "
        "ideas travel in the assistant message of the run that made them.",
    ),
    (
        "approve",
        "ASSUMPTION: approve takes {approved: bool}; the run resumes briefly and "
        "completes with result.executed = approved.",
    ),
    (
        "idea-cycle",
        "ASSUMPTION: 'cycle to next status' from change_idea goes to generated, from "
        "change_video to approve_to_create; from rejected or posted it is 422.",
    ),
    (
        "research",
        "ASSUMPTION: research runs take 10/30/90 s (quick/default/deep), get a "
        "conversation, and complete with {topic, depth, findings[], summary}.",
    ),
    # ---- engines and generation ----------------------------------------------
    (
        "blank-engine",
        "ASSUMPTION: a custom engine starts with the system final_video column and "
        "one row, so it can be rendered once ingredients are added.",
    ),
    (
        "bodies",
        "ASSUMPTION: rows POST accepts {spreadsheet_row: {values: {column: value}}}; rows "
        "mass_update {spreadsheet_rows: [{id, values}]}; cells mass_update {spreadsheet_cells: "
        "[{id, value?, creation_card?}]} (all ids checked first); update_positions takes "
        "{row_ids|column_ids|layer_ids: [...]} or {positions: [{id, position}]}.",
    ),
    (
        "card-in-generate",
        "ASSUMPTION: generate with an empty body runs the cell's stored card; a "
        "{generation_type, data} body runs and becomes the cell's card.",
    ),
    (
        "placeholders",
        "ASSUMPTION: '{{name}}' resolves from data.variables, then the row's cells: "
        "a whole-string placeholder of a media column becomes that cell's latest output "
        "resource id, inside text a text value or URL; an empty referenced cell is 422.",
    ),
    (
        "models",
        "ASSUMPTION: a card without model gets the first model the reference lists; "
        "video_from_image/ingredients durations are 5 or 10 like video_from_text.",
    ),
    (
        "stock",
        "ASSUMPTION: resources 4821-4823, 5921, 6001 and 7000 (the reference examples' "
        "ids) exist as public stock, so every example card validates; other resource ids must "
        "belong to the workspace.",
    ),
    (
        "cell-read",
        "ASSUMPTION: a cell carries generation_id/generation_status of its latest "
        "generation, and after completion value = the text result or the output URL.",
    ),
    (
        "prices",
        "ASSUMPTION: prices per the pricing table, charged on accept, refunded in full on "
        "stop/failure; usable_gen_credit_required whenever balance <= 0 (even for free media); "
        "insufficient_credits_for_job when 0 < balance < price; a generation reports 'credits'.",
    ),
    (
        "stop-continue",
        "ASSUMPTION: stop works on pending/processing, continue on stopped/failed "
        "(re-charged, restarted with a new latency); anything else is 422 validation_error.",
    ),
    (
        "idempotency",
        "ASSUMPTION: Idempotency-Key is scoped per API key and honoured on every POST; "
        "a replay carries 'Idempotent-Replayed: true'; answers >= 400 are not remembered.",
    ),
    (
        "render",
        "ASSUMPTION: render takes no body, uses the engine's aspect ratio, and its MP4 "
        "manifest is {engine_id, row_id, cell_id, generation_id, template_slug, aspect_ratio, "
        "cells: {column: value}, layers}.",
    ),
    (
        "layers",
        "ASSUMPTION: layers live on video cells; layer_type is video/image/audio/text/"
        "captions; a layer may carry its own creation card and be generated.",
    ),
    # ---- assets -------------------------------------------------------------
    (
        "direct-upload",
        "ASSUMPTION: the blob answer adds service_name and metadata; the URL lives "
        "3600 s; content_resources takes {content_resource: {file: signed_id}} only after the PUT.",
    ),
    ("multipart", "ASSUMPTION: a multipart file over 50 MB is 422 validation_error."),
    (
        "cdn",
        "ASSUMPTION: the CDN serves /cdn/<folder>/<name> without auth; generated audio is "
        "AAC in .m4a (audio/mp4), images .jpg, video .mp4; https://cdn.gen.pro/<path> URLs map "
        "onto the sim's /cdn/<path> when checking publish media.",
    ),
    # ---- jobs ---------------------------------------------------------------
    (
        "publish",
        "ASSUMPTION: publish_content needs platform 'tiktok' (others 'coming'), a media_url "
        "the sim's CDN serves, media_type VIDEO if given, and a linked tiktok account; result is "
        "{post_id, platform, post_url}.",
    ),
    (
        "schedule",
        "ASSUMPTION: a scheduled job stays pending until its scheduled time, scaled: it "
        "starts after (scheduled_time - now) x time_scale, then takes a publish latency.",
    ),
    (
        "train-social",
        "ASSUMPTION: train_social completes with {platform, type, value, "
        "items_indexed = max_results, monitoring}; PUT updates only train_social jobs' data.",
    ),
    # ---- step 1 odds and ends ----------------------------------------------
    (
        "workspaces",
        "ASSUMPTION: organizations and workspaces are the same objects; credit_balance "
        "is a number; a new workspace starts with 0 credits; only the owner deletes.",
    ),
    (
        "voices",
        "ASSUMPTION: design flow bodies are generate-script {prompt} -> {script}; "
        "generate-description {prompt|script} -> {description}; generate-samples {description} -> "
        "{samples: [{generated_voice_id, audio_url}] x3}; design {generated_voice_id, name}; clone "
        "{name, audio_resource_id}; preview {text?} -> {job_id}; public voices cannot be deleted.",
    ),
    (
        "elevenlabs",
        "ASSUMPTION: the sim calls an ElevenLabs key valid when it looks like one "
        "(optional 'sk_' then 20+ alphanumerics); only its last four characters are kept.",
    ),
    (
        "automation",
        "ASSUMPTION: automation config is {enabled, webhook_url, callback_url, events}; "
        "the test endpoints report what they would deliver and never call out.",
    ),
    (
        "variables",
        "ASSUMPTION: global variables come from global_variable_name/value columns; the "
        "template download is a one-sheet XLSX with headers name, value; import answers 501.",
    ),
    (
        "rate-headers",
        "ASSUMPTION: 429 carries Retry-After in integer seconds; X-RateLimit-Reset is "
        "seconds until the bucket is full again; both hosts share one bucket per key.",
    ),
)
