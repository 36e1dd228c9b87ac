"""The invitation page in a real browser: Debian's Chromium driven by Playwright, each link taken
from a real email. Every state is screenshotted (test-artifacts/) and checked by axe-core for
WCAG 2.1 AA; a headless browser that submits every form as it stands changes nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page

from contracts import routing
from tests.integration.conftest import address
from tests.integration.test_transfer import record_assets
from tests.support.flows import add_active_member, add_users, emails_to, membership_status
from tests.support.smtp import ReceivedEmail, RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.browser import answer, headless_chromium, state
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

ROOT = Path(__file__).parents[2]
BROWSER_TESTS = ROOT / "tests" / "browser"
ARTIFACTS = Path(os.environ.get("USERPROV_TEST_ARTIFACTS", ROOT / "test-artifacts"))
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def axe_source() -> str:
    script = BROWSER_TESTS / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("the browser tests need npm for axe-core (scripts/services-up installs it)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BROWSER_TESTS, check=True, timeout=600)
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as chromium:
        yield chromium


def page_url(email: ReceivedEmail, base: str, action: str | None = None) -> str:
    """The email's link, on the page under test (the workers write https://links.example.com/...)."""
    for line in email.text.split():
        if line.startswith("https://links.example.com/invitation?") and (action is None or f"action={action}" in line):
            return base + "?" + urlsplit(line).query
    raise AssertionError(f"no link in {email.text!r}")


async def checked(page: Page, axe: str, name: str, expected: str) -> None:
    """The page is in `state`; it is saved as test-artifacts/<name>.png; axe finds no WCAG 2.1 AA violation."""
    assert await state(page) == expected, await page.content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    await page.evaluate(axe)
    violations = await page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))", WCAG_21_AA)
    assert violations == [], f"{name}: {violations}"


async def opened(browser: Browser, url: str) -> Page:
    # axe is injected as a script: the page's own CSP (no script at all) is bypassed for it alone
    context = await browser.new_context(bypass_csp=True, locale="en-US", viewport={"width": 900, "height": 900})
    page = await context.new_page()
    answer = await page.goto(url)
    assert answer is not None and answer.status < 500
    return page


class TestInABrowser:
    async def test_a_welcome_is_opened_and_accepted(
        self, links: tuple[str, WorkerProcess], browser: Browser, axe_source: str, bus: BusClient, smtp: RecordingSmtpServer,
        db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        account_id = await account(name="Acme EMEA")
        person = address("browserwelcome")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Ada", "last_name": "Lovelace", "email": person}]})
        [email] = await emails_to(smtp, person)
        page = await opened(browser, page_url(email, base))
        await checked(page, axe_source, "invitation-welcome", "welcome")
        await page.click("button.primary")  # the box is not ticked: the browser itself asks for it
        assert await state(page) == "welcome" and await membership_status(db, account_id, person) == "invited"
        assert await answer(page, "accept") == "activated"
        await checked(page, axe_source, "invitation-activated", "activated")
        assert await membership_status(db, account_id, person) == "active"
        await page.goto(page_url(email, base))
        await checked(page, axe_source, "invitation-already-in", "already_in")

    async def test_a_transfer_shows_its_counts_and_moves_the_data(
        self, links: tuple[str, WorkerProcess], browser: Browser, axe_source: str, bus: BusClient, smtp: RecordingSmtpServer,
        db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        old, new = await account(name="Acme Consulting"), await account(name="Acme EMEA")
        person = address("browsermover")
        await add_active_member(bus, smtp, old, person)
        await record_assets(bus, db, old, person)
        await add_users(bus, {"account_id": new, "language": "fr",  # the page speaks the inviting account's language for the person
                              "users": [{"first_name": "Grace", "last_name": "Hopper", "email": person}]})
        _, transfer = await emails_to(smtp, person, count=2)
        page = await opened(browser, page_url(transfer, base, "accept"))
        await checked(page, axe_source, "invitation-transfer", "transfer")
        text = await page.inner_text("main")
        assert "Historique des sessions : 2" in text and "Acme Consulting" in text and await page.get_attribute("html", "lang") == "fr"
        assert await answer(page, "accept") == "transferred"
        await checked(page, axe_source, "invitation-transferred", "transferred")
        assert await membership_status(db, new, person) == "active" and await membership_status(db, old, person) == "removed"
        assert await db.fetchval("SELECT count(*) FROM assets WHERE account_id = $1", new) == 4

    async def test_a_decline_leaves_the_person_suspended(
        self, links: tuple[str, WorkerProcess], browser: Browser, axe_source: str, bus: BusClient, smtp: RecordingSmtpServer,
        db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        old, new = await account(name="Stay Corp"), await account(name="Other Corp")
        person = address("browserdecliner")
        await add_active_member(bus, smtp, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "Alan", "last_name": "Turing", "email": person}]})
        _, transfer = await emails_to(smtp, person, count=2)
        page = await opened(browser, page_url(transfer, base, "decline"))
        await page.evaluate("document.forms[1].submit()")  # as it stands: no box ticked
        await page.wait_for_load_state()
        await checked(page, axe_source, "invitation-not-confirmed", "transfer")
        assert await answer(page, "decline") == "suspended"
        await checked(page, axe_source, "invitation-declined", "suspended")
        assert await membership_status(db, new, person) == "suspended" and await membership_status(db, old, person) == "active"

    async def test_pages_of_links_that_cannot_be_used(
        self, links: tuple[str, WorkerProcess], browser: Browser, axe_source: str, bus: BusClient, smtp: RecordingSmtpServer,
        db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        page = await opened(browser, f"{base}?token=q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1")
        await checked(page, axe_source, "invitation-unknown", "unknown")

        old, new = await account(name="Admin Home"), await account(name="Elsewhere")
        admin, removed, lapsed = address("browseradmin"), address("browserremoved"), address("browserlapsed")
        await add_active_member(bus, smtp, old, admin, role="admin")
        await add_users(bus, {"account_id": new, "users": [{"first_name": f, "last_name": "X", "email": e} for f, e in
                                                           (("Adm", admin), ("Rem", removed), ("Lap", lapsed))]})
        _, transfer = await emails_to(smtp, admin, count=2)
        [removed_email], [lapsed_email] = await emails_to(smtp, removed), await emails_to(smtp, lapsed)

        page = await opened(browser, page_url(transfer, base, "accept"))
        assert await answer(page, "accept") == "last_admin"  # the only admin of Admin Home: the invitation stays open
        await checked(page, axe_source, "invitation-last-admin", "last_admin")
        assert await membership_status(db, new, admin) == "transfer_pending"

        page = await opened(browser, page_url(removed_email, base))
        await page.evaluate("document.querySelector('input[name=form_key]').value = 'forged'")
        await page.check("#confirm-accept")
        await page.click("button.primary")
        await checked(page, axe_source, "invitation-form-expired", "form_expired")

        await bus.publish(routing.USERS_REMOVE, {"account_id": new, "email": removed})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=removed), what="user.removed")
        await checked(await opened(browser, page_url(removed_email, base)), axe_source, "invitation-revoked", "revoked")
        await db.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE invitation_id IN"
                         " (SELECT i.invitation_id FROM invitations i JOIN memberships m USING (membership_id)"
                         "  JOIN profiles p USING (profile_id) WHERE p.email = $1)", lapsed)
        await checked(await opened(browser, page_url(lapsed_email, base)), axe_source, "invitation-expired", "expired")
        # the check can fail: a box without a label and grey on grey
        await page.set_content('<html lang="en"><body><main data-state="unknown"><h1>x</h1><input type="checkbox">'
                               '<p style="color:#999;background:#aaa">faint</p></main></body></html>')
        with pytest.raises(AssertionError, match="label.*color-contrast|color-contrast.*label"):
            await checked(page, axe_source, "axe-self-check", "unknown")


class TestScanners:
    """What mail security scanners do to a link before the person opens it: fetch it (again and
    again, HEAD included), and run it in a browser that submits every form as it stands."""

    async def test_a_scanner_changes_nothing(
        self, links: tuple[str, WorkerProcess], browser: Browser, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        old, new = await account(), await account()
        welcomed, mover = address("scannedwelcome"), address("scannedmover")
        await add_active_member(bus, smtp, old, mover)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "Wel", "last_name": "Come", "email": welcomed},
                                                           {"first_name": "Mo", "last_name": "Ver", "email": mover}]})
        [welcome] = await emails_to(smtp, welcomed)
        _, transfer = await emails_to(smtp, mover, count=2)
        urls = [page_url(welcome, base), page_url(transfer, base, "accept"), page_url(transfer, base, "decline")]
        before = len(bus.events)

        async with httpx.AsyncClient(timeout=15) as http:
            for url in urls:
                for _ in range(3):
                    assert (await http.get(url)).status_code == 200
                assert (await http.head(url)).status_code == 200
        context = await browser.new_context()  # the page's CSP as it is: a scanner's browser runs what the page allows
        for url in urls:
            page = await context.new_page()
            await page.goto(url)
            forms = await page.evaluate("document.forms.length")
            assert forms >= 1
            for index in range(forms):
                await page.goto(url)
                await page.evaluate("i => document.forms[i].submit()", index)
                await page.wait_for_load_state()
                assert await state(page) in ("welcome", "transfer")
            for button in await page.query_selector_all("button"):  # clicking, too: the unticked box stops the browser
                await button.click()
        await context.close()

        assert await membership_status(db, new, welcomed) == "invited"
        assert await membership_status(db, new, mover) == "transfer_pending"
        outcomes = (routing.USER_ACTIVATED, routing.USER_TRANSFERRED, routing.USER_SUSPENDED, routing.INVITATION_RESPONSE_REJECTED)
        assert not [e for e in bus.events[before:] if e.routing_key in outcomes], "a response was published"
        assert {await invitation_status(db, new, p) for p in (welcomed, mover)} == {"sent"}


async def invitation_status(db: asyncpg.Pool, account_id: str, email: str) -> str:
    return await db.fetchval(
        "SELECT i.status FROM invitations i JOIN memberships m USING (membership_id) JOIN profiles p USING (profile_id)"
        " WHERE m.account_id = $1 AND p.email = $2 ORDER BY i.created_at DESC LIMIT 1", account_id, email)
