"""The published JSON Schema of the events (`accrochage schema`, docs/event.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from accrochage.models.event import DeliveredEvent, RevokedEvent

SCHEMA_ID = "https://accrochage.invalid/schemas/event-v1.json"


def event_json_schema() -> dict[str, Any]:
    schema = TypeAdapter(DeliveredEvent | RevokedEvent).json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "accrochage event (certification.delivered | certification.revoked), v1",
        "description": (
            "Structure and single-field constraints. Rules across fields (dates, NIR key, "
            "certifier registry) are documented in docs/contract.md and enforced by accrochage."
        ),
        **schema,
    }


def event_json_schema_text() -> str:
    return json.dumps(event_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
