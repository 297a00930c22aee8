"""Migration discovery and planning (no database: ``apply`` is for integration tests)."""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass

import pytest

from shared.migrate import SERVICES, Migration, MigrationError, discover, plan


def _check_ordered(migrations: list[Migration], component: str) -> None:
    assert migrations, f"{component} has no migrations"
    versions = [m.version for m in migrations]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert versions[0] == 1
    for m in migrations:
        assert m.component == component
        assert m.name
        assert m.sql.strip()
        assert len(m.checksum) == 64


def test_shared_migrations() -> None:
    _check_ordered(discover("shared"), "shared")


def test_services_are_the_four() -> None:
    assert SERVICES == ("links", "attribution", "rewards", "notifications")


@pytest.mark.parametrize("service", SERVICES)
def test_plan_is_shared_then_the_service(service: str) -> None:
    shared, own = discover("shared"), discover(service)
    _check_ordered(own, service)
    assert plan(service) == shared + own
    components = [m.component for m in plan(service)]
    assert components == ["shared"] * len(shared) + [service] * len(own)


@pytest.mark.parametrize("service", ["nope", "", "shared", "Links"])
def test_plan_of_an_unknown_service_fails(service: str) -> None:
    with pytest.raises(MigrationError, match="unknown service"):
        plan(service)


def test_checksum_is_the_sha256_of_the_sql_and_tracks_changes() -> None:
    m = Migration("links", 1, "init", "CREATE TABLE t (id int);")
    assert m.checksum == hashlib.sha256(b"CREATE TABLE t (id int);").hexdigest()
    assert m.checksum == Migration("links", 1, "renamed", m.sql).checksum
    changed = Migration("links", 1, "init", "CREATE TABLE t (id bigint);")
    assert changed.checksum != m.checksum
    assert Migration("links", 1, "init", m.sql + " ").checksum != m.checksum


# --- discovery rules, over an in-memory folder ------------------------------------------------


@dataclass
class _Entry:
    name: str
    text: str = "SELECT 1;"

    def read_text(self) -> str:
        return self.text


class _Folder:
    def __init__(self, names: list[str]) -> None:
        self.entries = [_Entry(n, f"-- {n}") for n in names]

    def joinpath(self, name: str) -> _Folder:
        assert name == "migrations"
        return self

    def iterdir(self) -> list[_Entry]:
        return self.entries


def _fake_package(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    folder = _Folder(names)
    monkeypatch.setattr(importlib.resources, "files", lambda package: folder)


def test_discover_sorts_by_number_and_ignores_other_files(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_package(
        monkeypatch,
        ["010_later.sql", "002_second.sql", "README.md", "001_first.sql", "__init__.py"],
    )
    found = discover("links")
    assert [(m.version, m.name) for m in found] == [(1, "first"), (2, "second"), (10, "later")]
    assert found[0].sql == "-- 001_first.sql"


@pytest.mark.parametrize("bad", ["1_short.sql", "001-dash.sql", "001_Upper.sql", "abc_x.sql"])
def test_discover_rejects_misnamed_sql(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    _fake_package(monkeypatch, ["001_ok.sql", bad])
    with pytest.raises(MigrationError, match="does not match"):
        discover("links")


def test_discover_rejects_two_files_with_one_version(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_package(monkeypatch, ["001_a.sql", "001_b.sql"])
    with pytest.raises(MigrationError, match="share a version"):
        discover("links")
