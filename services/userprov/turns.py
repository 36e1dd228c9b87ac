"""Turns: the fair order in which waiting work is taken across accounts (start-time fair queueing).

Rows about to wait in a table get consecutive turns per account, after the account's last
waiting row, or after the queue's head when the account has nothing waiting. Work is taken by
ascending turn, so each account with work waiting is served once per turn, whatever the size of
its backlog or the number of other accounts. Two transactions adding work of one account at the
same moment may give it two rows per turn for a while: a small unfairness, never a starvation."""
from __future__ import annotations

from typing import Literal

WaitingTable = Literal["memberships", "invitations"]
WAITING_STATUS: dict[WaitingTable, str] = {"memberships": "pending", "invitations": "issued"}


def turns_cte(table: WaitingTable, new_rows: str) -> str:
    """SQL of a CTE `turns(account_id, start)`: the turn after which each account's new rows
    go, for the accounts named in `new_rows` (a CTE or subquery with an `account_id` column).
    Number the new rows of each account from start + 1."""
    waiting = f"{table} w WHERE w.status = '{WAITING_STATUS[table]}'"
    return (
        f"turns AS MATERIALIZED (SELECT a.account_id, greatest("
        f"(SELECT COALESCE(min(w.turn), 0) FROM {waiting}),"
        f" (SELECT COALESCE(max(w.turn), 0) FROM {waiting} AND w.account_id = a.account_id)) AS start"
        f" FROM (SELECT DISTINCT account_id FROM {new_rows}) a)"
    )
