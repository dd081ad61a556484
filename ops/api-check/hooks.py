"""schemathesis hooks: POST /api/v1/events takes JSON Lines
(application/x-ndjson), which schemathesis cannot write by itself."""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode("utf-8")
