"""WARROOM_SQLITE_DRIVER=aiosqlite: the fallback to plain aiosqlite runs warroom end to end."""

import pytest

import storage.engine
from tests.support import make_settings, start_harness


async def test_a_declare_runs_on_plain_aiosqlite(tmp_path, clock, monkeypatch: pytest.MonkeyPatch):
    def no_inline(*args: object, **kwargs: object) -> object:
        raise AssertionError("the aiosqlite driver must not open inline connections")

    monkeypatch.setattr(storage.engine, "inline_connector", no_inline)
    settings = make_settings(tmp_path, sqlite_driver="aiosqlite")
    assert settings.sqlite_driver == "aiosqlite"
    team = await start_harness(settings, clock)
    try:
        await team.ok('declare P1 "Payments down"')
        async with team.service._uow() as uow:
            incident = await uow.incidents.get(1)
        assert incident is not None and incident.title == "Payments down"
    finally:
        await team.app.close()


def test_an_unknown_driver_is_refused(tmp_path):
    with pytest.raises(ValueError, match="WARROOM_SQLITE_DRIVER"):
        storage.engine.create_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_driver="bogus")  # type: ignore[arg-type]
