"""Runs only the invitation-response service: `python -m userprov.invitation_response`."""
from userprov.cli import app

app(["run", "invitation-response"], prog_name="userprov")
