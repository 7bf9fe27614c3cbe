"""schemathesis hooks for SchemathesisTests (and `make fuzz`), loaded through SCHEMATHESIS_HOOKS.

A schema-valid Idempotency-Key (1-200 characters) gets a unique suffix, so two generated requests
never share a key by chance. A shared key replays the first answer (docs/api.md, by design): a
stateful check would then see a 201 for a media deleted since and read it as the server losing what
it had just created. Keys outside the schema are left as generated, so the negative tests still see
them refused; replays themselves are tested on their own (idempotencyKeyReplaysTheFirstAnswer).
"""

import uuid

import schemathesis


@schemathesis.hook
def map_headers(context, headers):
    if not headers:
        return headers
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 200:
        suffix = "-" + uuid.uuid4().hex
        headers["Idempotency-Key"] = key[: 200 - len(suffix)] + suffix
    return headers
