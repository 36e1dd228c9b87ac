"""Runs only the account-lookup service: `python -m services.account_lookup`."""
from services.cli import app

app(["run", "account-lookup"], prog_name="userprov")
