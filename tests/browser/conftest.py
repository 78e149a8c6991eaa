"""Browser tests (issue 6): Playwright drives Debian's Chromium against pytest-django's live server.

Playwright cannot download its own browser on these machines, so it runs /usr/bin/chromium (.ci/run
installs the `chromium` package when it is missing). Without it every browser test fails, loudly:
a skipped browser test would let the dashboard break unnoticed.

One browser for the package, a fresh context (cookies, storage) per test. Each test signs its
clinician in by handing the browser a session cookie (the sign-in pages have a test of their own),
screenshots every page it visits under var/screenshots/ and runs axe-core on it.
"""

import os
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, sync_playwright

from accounts.models import User
from tests.factories import ClinicFactory, ClinicianFactory

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium phones home at start-up, and this machine's
# closed network refuses its connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
BLOCKING_IMPACTS = ("serious", "critical")
_axe = Axe()


@pytest.fixture(scope="package")
def browser() -> Browser:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install chromium; "
            "`bash .ci/run test` installs it). Playwright cannot download its own browser here.",
            pytrace=False,
        )
    # Playwright's sync API keeps its event loop marked as running in this thread between calls, and
    # Django then refuses ORM calls from the test ("async context"). The tests are plain sync code
    # that only shares the thread with that loop, so the check is lifted while the browser lives.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server) -> Page:
    """A fresh browser context on the live server. The test fails on an uncaught script error, a
    console error (a refused Content-Security-Policy, a failed load) or any request that leaves the
    live server: the dashboard works offline, with no CDN (SPEC §12)."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    problems: list[str] = []

    def only_the_live_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            problems.append(f"a request left the live server: {route.request.url}")
            route.abort()

    context.route("**/*", only_the_live_server)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"script error on {page.url}: {error}"))
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console error on {page.url}: {message.text}"),
    )
    yield page
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def clinician(transactional_db) -> User:
    return ClinicianFactory(clinic=ClinicFactory(), email="browser-carer@example.org", display_name="Dr Rowan Vale")


@pytest.fixture
def sign_in(page, live_server):
    """sign_in(user): signs `user` in to the dashboard in this test's browser context, verified with a
    TOTP device, as if they had just come through the two-factor sign-in (django-otp's session key)."""

    def signed_in(user: User) -> None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=True)
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": live_server.url}]
        )

    return signed_in


def screenshot(page: Page, name: str) -> Path:
    """The whole page as var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page: Page) -> None:
    """Runs axe-core in the page; fails on any serious or critical violation, naming rule and targets."""
    violations = _axe.run(page).response["violations"]
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    report = [
        f"{v['id']} ({v['impact']}): {v['help']}\n"
        + "\n".join(f"    {', '.join(map(str, node['target']))}: {node['html'][:160]}" for node in v["nodes"])
        for v in blocking
    ]
    assert not blocking, f"axe-core on {page.url}:\n" + "\n".join(report)
