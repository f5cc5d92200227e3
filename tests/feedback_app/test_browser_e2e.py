"""End to end: a real short run labelled by a person in headless Chromium (Playwright).

The run (real Ray actors, MuJoCo InvertedPendulum-v5, real MLflow store) waits for its
first human labels; the browser opens the link the run printed, checks both clips play,
answers ten pairs (five with the keyboard, five with the mouse), and the test then reads the
labels back from the label store and the reward model's fits from MLflow.
"""

from __future__ import annotations

import shutil

import pytest
from feedback_helpers import RunInThread, human_run_overrides
from mlflow import MlflowClient
from playwright.sync_api import sync_playwright

from rlhp.config import load_config
from rlhp.data.label_store import read_labels

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# (how, what) for each of the ten pairs, and the preference each one stores
ANSWERS = [
    ("key", "ArrowLeft"), ("key", "ArrowRight"), ("key", "ArrowUp"), ("key", "ArrowDown"),
    ("focus", "left"),  # a focused button and Enter: no mouse needed
    ("click", "left"), ("click", "right"), ("click", "tie"), ("click", "left"),
    ("click", "right"),
]  # fmt: skip
STORED = [1.0, 0.0, 0.5, None, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0]

BOTH_PLAYING = """() => ['left', 'right'].every((id) => {
    const v = document.getElementById(id);
    return v.readyState >= 3 && !v.paused && v.currentTime > 0 && v.videoWidth > 0;
})"""


def answer_ten_pairs(page, link: str, shots) -> list[str]:
    """Open the run's link, and answer ten pairs as ANSWERS says; the clips each showed."""
    page.goto(link)
    page.wait_for_function("() => !document.getElementById('pair').hidden", timeout=60_000)
    assert "Keep the pole balanced upright" in page.inner_text("#task")
    assert "#token" not in page.url  # the token left the address bar
    seen: list[str] = []
    for n, (how, what) in enumerate(ANSWERS, start=1):
        page.wait_for_function(  # a new pair is on screen, and both its clips are playing
            f"() => !{seen!r}.includes(document.getElementById('pair').dataset.pairId)"
            f" && ({BOTH_PLAYING})()",
            timeout=60_000,
        )
        seen.append(page.eval_on_selector("#pair", "e => e.dataset.pairId"))
        if n in (1, 6):
            page.screenshot(path=shots / f"pair-{n}.png")
        if how == "key":
            page.keyboard.press(what)
        elif how == "focus":
            page.focus(f"button[data-choice={what}]")
            page.keyboard.press("Enter")
        else:
            page.click(f"button[data-choice={what}]")
        page.wait_for_function(
            f"() => document.getElementById('your-labels').textContent === '{n}'",
            timeout=60_000,
        )
    page.wait_for_function(
        "() => document.getElementById('labels').textContent === '10'", timeout=30_000
    )
    page.screenshot(path=shots / "after-ten-answers.png")
    return seen


@pytest.mark.slow
def test_a_person_labels_a_live_run_in_chromium(ray_cluster, tmp_path, artifacts_dir):
    assert shutil.which(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    shots = artifacts_dir / "feedback_app"
    shots.mkdir(exist_ok=True)
    cfg = load_config(
        "default",
        human_run_overrides(
            tmp_path,
            "total_steps=24000",
            "label_schedule.initial_labels=5",
            "label_schedule.total_labels=10",
            "label_schedule.total_timesteps=3000",  # all ten asked early in the run
            "feedback.task=Keep the pole balanced upright",
        ),
    )
    live = RunInThread(cfg)
    link = live.link()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        try:
            seen = answer_ten_pairs(page, link, shots)
        except BaseException:
            page.screenshot(path=shots / "failure.png")
            print("page:", page.inner_text("#message"), "run:", live.messages[-3:], live.error)
            raise
        finally:
            browser.close()

    live.join()
    assert len(set(seen)) == 10  # a new pair every time
    labels = read_labels(tmp_path / "runs" / live.run.run_id / "labels").to_pylist()
    assert [r["preference"] for r in labels] == STORED
    assert {(r["source"], r["labeler"]) for r in labels} == {("human", "labeller-1")}
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    trained = [
        a.value + b.value
        for a, b in zip(
            client.get_metric_history(live.run.run_id, "reward_model/n_train"),
            client.get_metric_history(live.run.run_id, "reward_model/n_val"),
            strict=True,
        )
    ]
    assert trained[0] == 4  # the five initial labels, less one "can't tell"
    assert trained[-1] == 9  # refitted on every human label that can be trained on
    metrics = client.get_run(live.run.run_id).data.metrics
    assert metrics["human/labels_by/labeller-1"] == 10
    assert metrics["human/cant_tell_rate"] == pytest.approx(0.1)
    assert metrics["human/tie_rate"] == pytest.approx(0.2)
