"""JSON parsing that keeps numbers exact: JSON numbers become Decimal, never float."""

import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class ExponentNumber(str):
    """A JSON number written in exponent notation (`1e3`): kept as text so amounts refuse it."""


def _parse_float(text: str) -> Decimal | ExponentNumber:
    if "e" in text or "E" in text:
        return ExponentNumber(text)
    return Decimal(text)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """Refuse `{"amount": "1", "amount": "1000"}`: no reader may see a different value."""
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen.add(key)
    return dict(pairs)


class DecimalJSONParser(JSONParser):
    """DRF's JSON parser, reading fractional numbers as Decimal.

    Refuses NaN/Infinity, duplicate keys, and nesting too deep to parse, as `malformed_json`.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read() if stream is not None else b""
            return json.loads(
                raw.decode(encoding),
                parse_float=_parse_float,
                parse_constant=_refuse_constant,
                object_pairs_hook=_object_without_duplicates,
            )
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
