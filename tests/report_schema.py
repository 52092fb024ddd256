"""docs/report.schema.json, for the tests that validate every report they see."""

import json
import os

import jsonschema

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "report.schema.json")

with open(SCHEMA_PATH) as _handle:
    SCHEMA = json.load(_handle)
jsonschema.Draft202012Validator.check_schema(SCHEMA)
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def validate_report(report):
    """Raise AssertionError listing every way ``report`` breaks the schema."""
    errors = sorted(_VALIDATOR.iter_errors(report), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join("%s: %s" % ("/".join(str(p) for p in e.absolute_path), e.message) for e in errors[:20])
