"""Runs only the user-creation service: `python -m userprov.user_creation`."""
from userprov.cli import app

app(["run", "user-creation"], prog_name="userprov")
