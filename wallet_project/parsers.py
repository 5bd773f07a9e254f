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


class DecimalJSONParser(JSONParser):
    """DRF's JSON parser, reading fractional numbers as Decimal and refusing NaN/Infinity."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read() if stream is not None else b""
            return json.loads(
                raw.decode(encoding),
                parse_float=_parse_float,
                parse_constant=_refuse_constant,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
