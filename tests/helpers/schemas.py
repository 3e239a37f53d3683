"""Fragments of the report schema the tests validate parts of a report against."""

from probe.report import validator as _schema


def policies_schema():
    """The schema of a report's `policies` section alone."""
    return {"$defs": _schema.load_schema(1)["$defs"], "$ref": "#/$defs/policies"}
