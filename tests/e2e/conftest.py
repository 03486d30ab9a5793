"""Fixtures of the browser tests: a real mesh behind a real gateway, Debian's chromium driven by
Playwright, and a screenshot of every test's page under test-artifacts/e2e/.

The mesh, its database and the browser are the package's: started once for every browser test
(tests/workers.py keeps the package's tests together on one worker), ended after the last.
A test that stops a part of the mesh (the bridge, the gateway) starts it again before it ends."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.studio_mesh import STUDIO_DIST, StudioMesh, artifact, create_key
from tests.integration.mesh import fresh_redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url

__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

# Never a browser Playwright downloads: the distribution's, which ./dev test installs.
CHROMIUM = Path("/usr/bin/chromium")

# Debian's wrapper turns GPU rasterization on: every tile and canvas is then drawn by SwiftShader
# (GL in software) in the GPU process, which the page waits on. Drawn in the renderer instead (the
# GPU process then only composites), test_studio.py took 8-10% less CPU (two pairs, 2026-11-27).
CHROMIUM_ARGS = ["--disable-gpu"]

# The last view's screenshot: a page that answers draws it in well under a second.
SCREENSHOT_MS = 10_000
VIEWPORT: ViewportSize = {"width": 1440, "height": 1100}

# What the page shows comes from the mesh, on a machine the other workers load (4 on 2 cores:
# a patch view took over Playwright's default 5 s to open in a full run). Every assertion waits
# up to 30 s unless it says otherwise (test_studio.WAIT_MS); one that holds returns at once.
expect.set_options(timeout=30_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives Studio in a real browser against a real mesh")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The backtest module runs last of the package: its hub waits for 90 s of the sim's market
    recorded since the mesh started, which the modules before it leave the recorder time to write
    (run in its alphabetical place, third, it waited 30 s for it)."""
    here = Path(__file__).parent
    slots = [n for n, item in enumerate(items) if item.path.parent == here]
    moved = sorted((items[n] for n in slots), key=lambda item: item.path.name == "test_studio_backtest.py")
    for n, item in zip(slots, moved, strict=True):
        items[n] = item


@pytest.fixture(scope="session")
def studio_dist() -> Path:
    if not (STUDIO_DIST / "index.html").is_file():
        pytest.fail(f"Studio is not built ({STUDIO_DIST} has no index.html): run `./dev test`, or "
                    "`npm run build` in trademesh/gateway/studio")  # fmt: skip
    return STUDIO_DIST


@pytest.fixture(scope="session")
def chromium() -> Path:
    if shutil.which(str(CHROMIUM)) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: `./dev test` installs Debian's chromium (apt-get install chromium)"
        )
    return CHROMIUM


@pytest.fixture(scope="package")
async def e2e_database(database_url: str) -> AsyncIterator[str]:
    """The browser tests' own database: API keys, recorded events."""
    async with new_database(database_url, "e2e") as url:
        yield url


@pytest.fixture(scope="package")
async def api_key(e2e_database: str) -> str:
    """An API key named e2e, made as an operator would (`trademesh keys create e2e`)."""
    return await asyncio.to_thread(create_key, e2e_database, "e2e")


@pytest.fixture(scope="package")
async def launching(chromium: Path) -> AsyncIterator[asyncio.Task[Browser]]:
    """Chromium launching, in the background: the key and the mesh are made meanwhile (the mesh
    asks for this first; they wait in threads), where one after the other the three took a
    second or two more of the package's set-up."""
    async with async_playwright() as playwright:
        launch = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        task = asyncio.create_task(launch)
        try:
            yield task
        finally:
            await asyncio.wait([task])
            if task.exception() is None:
                await task.result().close()


@pytest.fixture(scope="package")
async def mesh(
    launching: asyncio.Task[Browser],
    studio_dist: Path,
    redis_url: str,
    e2e_database: str,
    api_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[StudioMesh]:
    # The key exists before the gateway starts: it loads keys at start (then refreshes every few s).
    started = StudioMesh(tmp_path_factory.mktemp("e2e-mesh"), await fresh_redis_db(redis_url), e2e_database)
    try:
        await asyncio.to_thread(started.start_gateway)
        await asyncio.to_thread(started.start_services)
        yield started
    finally:
        await started.stop()


@pytest.fixture(scope="package")
async def browser(mesh: StudioMesh, launching: asyncio.Task[Browser]) -> Browser:
    """Chromium, launched while the mesh started (asked for first: else a test naming `page`
    before `mesh` would wait for the launch before the mesh's start)."""
    return await launching


@pytest.fixture(scope="package")
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """One browser context for the package's pages. Studio keeps nothing in the context's own
    storage (no cookies, localStorage or IndexedDB): a session lives in a tab's sessionStorage,
    which each new page starts empty. What the tests share is the HTTP cache: Studio's bundle
    (600 kB of JS) is fetched once, not at each test's first load, and a test's page is a tab of
    a context already made (a context per test: each log-in's first load took 0.6-1.2 s, now
    0.2-0.6 s; the package's page loads 42 s in all, now 23 s)."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        yield context
    finally:
        await context.close()


class FreshPages:
    """Blank pages of the package's context, one a test, made when the test takes it (a page of
    a context already made is a renderer's start). None is made ahead: a page opened while a
    test ran became the context's front tab, and the test's page, behind it, had its animation
    frames throttled to one or two a second (each click and screenshot waited 1-4 s for them)."""

    def __init__(self, context: BrowserContext) -> None:
        self._context = context

    async def take(self) -> Page:
        page = await self._context.new_page()
        await page.bring_to_front()
        return page

    async def close_all(self) -> None:
        """Closes every page of the context: the test's, and any tab it opened (each closed page
        ends its live streams at the gateway)."""
        for page in self._context.pages:
            await page.close()


@pytest.fixture(scope="package")
async def fresh_pages(browser_context: BrowserContext) -> FreshPages:
    return FreshPages(browser_context)


@pytest.fixture
async def page(fresh_pages: FreshPages, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh page (a tab: empty sessionStorage) per test; its last view is saved as an artifact.

    Its pages are closed whatever happens: a page left open keeps its live stream open at the
    shared gateway, which the next tests of the worker count (a page that stopped answering in a
    CI run made four more tests fail on a stream that was not theirs)."""
    opened = await fresh_pages.take()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
        await save_last_view(opened, request.node.name)
    finally:
        await fresh_pages.close_all()
    assert not errors, f"uncaught errors in the page: {errors}"


async def save_last_view(page: Page, name: str) -> None:
    """The page's last view as an artifact. A page that cannot draw it in time has stopped
    answering: that is said, with what chromium's processes are doing (a renderer spinning at
    100% is the page's own loop; one idle is waiting on another process), and the test's own
    outcome stands."""
    try:
        await page.screenshot(path=artifact(name), full_page=True, timeout=SCREENSHOT_MS)
    except PlaywrightTimeoutError:
        print(f"the page did not draw its last view within {SCREENSHOT_MS} ms; chromium's processes:")
        print(chromium_processes())


def chromium_processes() -> str:
    """ps of chromium's processes: CPU, state, age and type."""
    shown = subprocess.run(
        ["ps", "-eo", "pid,pcpu,stat,etime,args", "--sort=-pcpu"], capture_output=True, text=True, check=False
    )
    rows = [line[:200] for line in shown.stdout.splitlines() if "chromium" in line]
    return "\n".join(rows) or "(none)"
