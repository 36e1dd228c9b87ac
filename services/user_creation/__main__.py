"""Runs only the user-creation service: `python -m services.user_creation`."""
from services.cli import app

app(["run", "user-creation"], prog_name="userprov")
