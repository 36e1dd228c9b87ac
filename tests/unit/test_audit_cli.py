"""`userprov audit export`'s times, judged before anything is asked: a bad one is one line and
exit status 2, not a traceback."""
from __future__ import annotations

from typer.testing import CliRunner

from userprov.cli import app


class TestExportTimes:
    def test_a_time_that_is_no_iso_8601_time(self) -> None:
        """It says which option and what a time looks like."""
        bad = CliRunner().invoke(app, ["audit", "export", "acme", "--since", "yesterday"], env={"COLUMNS": "200"})
        assert bad.exit_code == 2 and "is no ISO 8601 time" in bad.output and "--since" in bad.output

    def test_since_after_until(self) -> None:
        """Refused before audit.list would refuse it."""
        bad = CliRunner().invoke(app, ["audit", "export", "acme", "--since", "2026-12-02", "--until", "2026-12-01"],
                                 env={"COLUMNS": "200"})
        assert bad.exit_code == 2 and "--since is after --until" in bad.output
