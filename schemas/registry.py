"""A local schema registry: Confluent-style global ids, subjects with versions, BACKWARD compatibility.

Used by the embedded mode (no servers) and by tests; the distributed mode can point the same wire
code at any object with ``schema_by_id``. The registry is in memory and, when given a path, persists
itself as a JSON file after every change (written to a temp file and renamed, so a crash never
leaves half a file).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException

from qrtrace.errors import InputError, QrtraceError
from qrtrace.schemas.compat import AvroSchema, backward_incompatibility

CHECKINS_SUBJECT = "checkins-value"
VENUES_SUBJECT = "venues-value"
CASES_SUBJECT = "cases-value"
VISITS_SUBJECT = "visits-value"
DEAD_LETTERS_SUBJECT = "checkins.dlq-value"
IDENTITIES_SUBJECT = "identities-value"
# A second record type on the checkins topic: subject named topic-record style (TopicRecordNameStrategy).
CHECKIN_BUNDLES_SUBJECT = "checkins-vn.qrtrace.CheckinBundle"

# subject -> (packaged schema name, versions registered oldest first)
PACKAGED_SUBJECTS: dict[str, tuple[str, tuple[int, ...]]] = {
    CHECKINS_SUBJECT: ("checkin", (1, 2, 3)),
    VENUES_SUBJECT: ("venue", (1,)),
    CASES_SUBJECT: ("case", (1,)),
    VISITS_SUBJECT: ("visit", (1,)),
    DEAD_LETTERS_SUBJECT: ("dead_letter", (1,)),
    IDENTITIES_SUBJECT: ("identity", (1,)),
    CHECKIN_BUNDLES_SUBJECT: ("checkin_bundle", (1, 2)),
}

_FILE_FORMAT = 1


class SchemaError(QrtraceError):
    """A schema cannot be registered or found."""


class InvalidSchemaError(SchemaError):
    """The schema is not valid Avro."""


class IncompatibleSchemaError(SchemaError):
    """The schema cannot read data written with the subject's latest version."""


class UnknownSchemaError(SchemaError):
    """No schema has this id, subject or packaged name."""


def canonical(schema: AvroSchema) -> str:
    """The schema as compact JSON with sorted keys: equal strings mean the same registered schema."""
    return json.dumps(_clean(schema), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _clean(schema: AvroSchema) -> AvroSchema:
    """A private deep copy, without the bookkeeping keys fastavro adds to a schema it has parsed."""
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if not k.startswith("__")}
    return copy.deepcopy(schema)


class SchemaRegistry:
    """Subjects -> versions -> global schema ids (starting at 1), with BACKWARD compatibility checks."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._schemas: dict[int, AvroSchema] = {}
        self._parsed: dict[int, Any] = {}
        self._ids: dict[str, int] = {}  # canonical JSON -> id
        self._subjects: dict[str, list[int]] = {}
        if self._path is not None and self._path.exists():
            self._load(self._path)

    def register(self, subject: str, schema: AvroSchema) -> int:
        """Register `schema` under `subject` and return its global id.

        The same schema registered again under the subject returns its existing id. A new schema must
        read data written with the subject's latest version, else IncompatibleSchemaError.
        """
        schema = _clean(schema)  # the caller may mutate its dict later
        key = canonical(schema)
        with self._lock:
            versions = self._subjects.get(subject, [])
            known = self._ids.get(key)
            if known is not None and known in versions:
                return known
            parsed = self._parse(subject, schema) if known is None else self._parsed[known]
            if versions:
                self._check_backward(subject, schema, versions)
            schema_id = known if known is not None else self._add_schema(key, schema, parsed)
            self._subjects.setdefault(subject, []).append(schema_id)
            try:
                self._save()
            except BaseException:
                self._forget(subject, schema_id, key, new=known is None)  # memory matches the file
                raise
            return schema_id

    def schema_by_id(self, schema_id: int) -> Any:
        """The fastavro-parsed schema with this global id (shared: do not modify it).

        Raises UnknownSchemaError if no schema has this id.
        """
        try:
            return self._parsed[schema_id]
        except KeyError:
            raise UnknownSchemaError(f"No schema is registered with id {schema_id}.") from None

    def schema_json(self, schema_id: int) -> AvroSchema:
        """A copy of the schema with this id as it was registered (plain JSON-like Avro, not parsed)."""
        self.schema_by_id(schema_id)  # raises for an unknown id
        return copy.deepcopy(self._schemas[schema_id])

    def latest(self, subject: str) -> tuple[int, Any]:
        """(id, parsed schema) of the newest version registered under `subject`."""
        schema_id = self.versions(subject)[-1]
        return schema_id, self._parsed[schema_id]

    def versions(self, subject: str) -> list[int]:
        """Schema ids registered under `subject`, oldest first (version n is element n - 1)."""
        versions = self._subjects.get(subject)
        if not versions:
            raise UnknownSchemaError(f"No schema is registered under subject {subject!r}.")
        return list(versions)

    def subjects(self) -> list[str]:
        """Registered subjects, sorted."""
        return sorted(self._subjects)

    def _parse(self, subject: str, schema: AvroSchema) -> Any:
        try:
            return fastavro.parse_schema(schema)
        except (SchemaParseException, KeyError, TypeError, ValueError) as exc:
            raise InvalidSchemaError(f"The schema for subject {subject!r} is not valid Avro: {exc}.") from None

    def _check_backward(self, subject: str, schema: AvroSchema, versions: list[int]) -> None:
        latest_id = versions[-1]
        problem = backward_incompatibility(schema, self._schemas[latest_id])
        if problem is not None:
            raise IncompatibleSchemaError(
                f"The new schema for subject {subject!r} cannot read data written with version "
                f"{len(versions)} (id {latest_id}): {problem}."
            )

    def _add_schema(self, key: str, schema: AvroSchema, parsed: Any) -> int:
        schema_id = max(self._schemas, default=0) + 1
        self._schemas[schema_id] = schema
        self._parsed[schema_id] = parsed
        self._ids[key] = schema_id
        return schema_id

    def _forget(self, subject: str, schema_id: int, key: str, new: bool) -> None:
        self._subjects[subject].pop()
        if not self._subjects[subject]:
            del self._subjects[subject]
        if new:
            del self._schemas[schema_id], self._parsed[schema_id], self._ids[key]

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _FILE_FORMAT:
                raise ValueError(f"unsupported format {data.get('format')!r}")
            for raw_id, schema in data["schemas"].items():
                self._add_loaded(int(raw_id), schema)
            self._subjects = {s: [int(i) for i in ids] for s, ids in data["subjects"].items()}
            unknown = {i for ids in self._subjects.values() for i in ids} - self._schemas.keys()
            if unknown:
                raise ValueError(f"subjects refer to missing ids {sorted(unknown)}")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, SchemaParseException) as exc:
            raise InputError(f"{path} is not a readable schema registry file: {exc}.") from None

    def _add_loaded(self, schema_id: int, schema: AvroSchema) -> None:
        self._schemas[schema_id] = schema
        self._parsed[schema_id] = fastavro.parse_schema(schema)
        self._ids[canonical(schema)] = schema_id

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "format": _FILE_FORMAT,
            "schemas": {str(i): s for i, s in self._schemas.items()},
            "subjects": self._subjects,
        }
        _write_atomically(self._path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and os.replace, so readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def packaged_names() -> list[str]:
    """Packaged schema files as ``name.vN`` (e.g. ``checkin.v2``), sorted."""
    folder = resources.files("qrtrace.schemas").joinpath("avro")
    return sorted(p.name.removesuffix(".avsc") for p in folder.iterdir() if p.name.endswith(".avsc"))


def load_packaged(name: str, version: int) -> dict[str, Any]:
    """The packaged schema ``avro/{name}.v{version}.avsc`` as a dict, e.g. ``load_packaged("checkin", 2)``."""
    resource = resources.files("qrtrace.schemas").joinpath(f"avro/{name}.v{version}.avsc")
    if not resource.is_file():
        raise UnknownSchemaError(
            f"There is no packaged schema {name} version {version}; packaged: {', '.join(packaged_names())}."
        )
    return json.loads(resource.read_text(encoding="utf-8"))


def default_registry(path: str | os.PathLike[str] | None = None) -> SchemaRegistry:
    """A registry holding every packaged schema under its subject (checkins-value: v1 then v2, ...)."""
    registry = SchemaRegistry(path)
    for subject, (name, versions) in PACKAGED_SUBJECTS.items():
        for version in versions:
            registry.register(subject, load_packaged(name, version))
    return registry
