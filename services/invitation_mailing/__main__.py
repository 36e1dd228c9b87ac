"""Runs only the invitation-mailing service: `python -m services.invitation_mailing`."""
from services.cli import app

app(["run", "invitation-mailing"], prog_name="userprov")
