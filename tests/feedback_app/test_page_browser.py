"""The labelling page in real headless Chromium (Playwright) against the real app and service:
it fits a 1280x800 window whatever the clips' aspect ratio, and a server error with a body
that is not JSON (a proxy's or the server's own 500 page) is shown to the person, who can
send the same answer again, instead of locking the page."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from feedback_helpers import TOKENS, pairs_of
from playwright.sync_api import sync_playwright
from test_browser_e2e import CHROMIUM, CHROMIUM_ARGS

from rlhp.envs.clips import encode_video
from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import LocalBackend
from rlhp.feedback_app.server import AppServer

ALICE = next(iter(TOKENS))


class StillClips:
    """A ClipSource whose every clip is one real VP9 video of ``width`` x ``height``."""

    media_type = "video/webm"

    def __init__(self, tmp_path, width: int, height: int) -> None:
        t = np.arange(12, dtype=np.uint8)[:, None, None, None]
        frames = np.broadcast_to(t * 20, (12, height, width, 3)).copy()
        frames[:, : height // 2, : width // 2] = 200  # something to see
        self.data = encode_video(frames, tmp_path / f"clip-{width}x{height}.webm", 12).read_bytes()

    def clip(self, segment) -> bytes:
        return self.data

    def prefetch(self, segments) -> None:
        pass


class FailingOnce(LocalBackend):
    """The real service, except that the first call of ``method`` fails with a plain
    exception: the app answers 500 with Starlette's text/plain "Internal Server Error"."""

    def __init__(self, service, method: str) -> None:
        super().__init__(service)
        self.method, self.failed = method, threading.Event()

    async def call(self, method, *args):
        if method == self.method and not self.failed.is_set():
            self.failed.set()
            raise RuntimeError("the label store is on fire")
        return await super().call(method, *args)


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_for(make_service, segments, tmp_path, chromium):
    """``page_for(width, height, backend=None)`` -> (page, service): the page opened with
    alice's link on a 1280x800 viewport, its first pair on screen."""
    made = []

    def open_page(width=320, height=240, backend=None):
        service = make_service(clips=StillClips(tmp_path, width, height))
        service.enqueue(pairs_of(segments), "random")
        server = AppServer(create_app((backend or LocalBackend)(service)), "127.0.0.1", 0)
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        made.append((server, page))
        page.goto(server.url(ALICE))
        return page, service

    yield open_page
    for server, page in made:
        page.close()
        server.stop()


PAIR_READY = """() => !document.getElementById('pair').hidden
    && ['left', 'right'].every((id) => document.getElementById(id).videoWidth > 0)
    && [...document.querySelectorAll('.choices button')].every((b) => !b.disabled)"""

LAYOUT = """() => {
    const box = (el) => el.getBoundingClientRect();
    const inside = (r) => r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5
        && r.right <= innerWidth + 0.5;
    const videos = ['left', 'right'].map((id) => document.getElementById(id));
    const buttons = [...document.querySelectorAll('.choices button')];
    return {
        overflowY: document.documentElement.scrollHeight - innerHeight,
        overflowX: document.documentElement.scrollWidth - innerWidth,
        allVisible: [...videos, ...buttons].every((el) => inside(box(el))),
        videoHeights: videos.map((v) => box(v).height),
        videoWidths: videos.map((v) => box(v).width),
    };
}"""


@pytest.mark.parametrize(
    ("width", "height"),
    [(500, 500), (320, 240), (640, 480), (300, 600), (960, 240)],
    ids=["square-pendulum", "4:3-mujoco", "4:3-large", "portrait", "wide"],
)
def test_the_page_fits_1280x800_without_scrolling_for_any_clip_shape(
    page_for, width, height, artifacts_dir
):
    page, _ = page_for(width, height)
    page.wait_for_function(PAIR_READY, timeout=60_000)
    layout = page.evaluate(LAYOUT)
    shots = artifacts_dir / "feedback_app"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=shots / f"layout-{width}x{height}.png")
    assert layout["overflowY"] <= 0, layout  # no vertical scrolling
    assert layout["overflowX"] <= 0, layout
    assert layout["allVisible"], layout  # both clips and every button on screen
    # and the clips are still large: the space left is used, not a thumbnail
    assert min(layout["videoHeights"]) >= 300 or min(layout["videoWidths"]) >= 500, layout


def test_a_500_with_a_non_json_body_is_shown_and_the_answer_can_be_sent_again(page_for):
    backend = None

    def failing(service):
        nonlocal backend
        backend = FailingOnce(service, "api_answer")
        return backend

    page, service = page_for(backend=failing)
    page.wait_for_function(PAIR_READY, timeout=60_000)
    pair_id = page.eval_on_selector("#pair", "e => e.dataset.pairId")
    page.click("button[data-choice=left]")
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('not stored')",
        timeout=30_000,
    )
    message = page.inner_text("#message")
    assert "500" in message and "Try again" in message, message
    assert backend.failed.is_set() and len(service.store) == 0
    # the page is not locked: same pair, buttons enabled, the same answer goes through
    page.wait_for_function(PAIR_READY, timeout=10_000)
    assert page.eval_on_selector("#pair", "e => e.dataset.pairId") == pair_id
    page.click("button[data-choice=left]")
    page.wait_for_function(
        "() => document.getElementById('your-labels').textContent === '1'", timeout=30_000
    )
    assert len(service.store) == 1


def test_a_failed_request_for_the_next_pair_is_reported_and_retried(page_for):
    page, _ = page_for(backend=lambda service: FailingOnce(service, "api_next"))
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('500')",
        timeout=30_000,
    )
    assert "Internal Server Error" in page.inner_text("#message")
    page.wait_for_function(PAIR_READY, timeout=30_000)  # retried on its own: a pair is shown
