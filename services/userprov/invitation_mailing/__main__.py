"""Runs only the invitation-mailing service: `python -m userprov.invitation_mailing`."""
from userprov.cli import app

app(["run", "invitation-mailing"], prog_name="userprov")
