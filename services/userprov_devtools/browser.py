"""Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads): how
the demo and the browser tests answer an invitation as a person does, box ticked and button
clicked."""
from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, Page, async_playwright

# no sandbox (it runs as root in CI and containers) and no calls home
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(found, os.X_OK):
        raise RuntimeError("Chromium is not installed: scripts/services-up installs it (Debian package chromium)")
    return found


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def state(page: Page) -> str:
    """The page's state (data-state of its main element): welcome, transfer, activated, ..."""
    return await page.get_attribute("main", "data-state") or ""


async def answer(page: Page, action: str) -> str:
    """Ticks the confirmation box of `action` (accept or decline), clicks its button, and
    returns the state of the page that answers."""
    await page.check(f"#confirm-{action}")
    async with page.expect_navigation():
        await page.click(f"form:has(#confirm-{action}) button")
    return await state(page)
