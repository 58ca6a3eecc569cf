"""Headless Chromium (Debian's package) driven by Playwright, for the site-staff web forms."""

import functools
import os
import shutil

import pytest

AXE_CORE = ".venv/axe/node_modules/axe-core/axe.min.js"  # installed by `make browser`
SERIOUS = ("serious", "critical")


def chromium_path() -> str:
    path = os.environ.get("EDC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail(f"No Chromium at {path}: install Debian's chromium (make test does it).")
    return path


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # plain synchronous code, which Django would otherwise refuse next to a running loop.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page, username, password):
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")


def log_out(page):
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/**")


@functools.cache
def axe_core() -> str:
    """axe-core's script: the npm package, installed by ``make browser`` into a git-ignored
    folder (EDC_AXE_CORE names another copy)."""
    from django.conf import settings

    path = os.environ.get("EDC_AXE_CORE") or os.path.join(settings.BASE_DIR, AXE_CORE)
    if not os.path.exists(path):
        pytest.fail(f"No axe-core at {path}: run 'make browser' (npm install axe-core).")
    with open(path, encoding="utf-8") as script:
        return script.read()


def axe_violations(page, impacts=SERIOUS) -> list[str]:
    """axe-core's violations on the page (WCAG 2.x A and AA rules and best practices) of the
    given impacts, one line each: rule, impact, help, the first elements concerned."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_core())
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
          .map(v => ({id: v.id, impact: v.impact, help: v.help,
                      targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}"
        for v in violations
        if v["impact"] in impacts
    ]
