"""Runs only the account-lookup service: `python -m userprov.account_lookup`."""
from userprov.cli import app

app(["run", "account-lookup"], prog_name="userprov")
