"""docker-compose.yml is checked against the Compose Specification schema (no engine here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import SHARED

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_matches_the_compose_spec() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    schema_path = SHARED / "reference" / "compose-spec.json"
    if not schema_path.exists():
        pytest.skip("shared/reference/compose-spec.json not present")
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.validate(doc, json.loads(schema_path.read_text()))
    # Everything published binds to loopback.
    for name, service in doc["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert doc["services"]["beat"]["deploy"]["replicas"] == 1


def test_compose_schema_rejects_a_broken_file() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = SHARED / "reference" / "compose-spec.json"
    if not schema_path.exists():
        pytest.skip("shared/reference/compose-spec.json not present")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"services": {"x": {"ports": {"bad": 1}}}}, json.loads(schema_path.read_text())
        )
