"""Runs only the invitation-response service: `python -m services.invitation_response`."""
from services.cli import app

app(["run", "invitation-response"], prog_name="userprov")
