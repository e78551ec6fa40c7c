"""The public board in a real browser: Debian's Chromium, driven by Selenium through Debian's
chromedriver (nothing downloads a browser), at a phone's width and a desktop's, on the demo
community. Screenshots and the printed notice are kept in `test-artifacts/` (or
`$YISHI_TEST_ARTIFACTS`). Where Chromium is not installed the tests skip saying why; on CI
(`CI=true`) they fail instead: `make test` installs it where it can."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import demo
from bot.app import App
from bot.config import Config
from storage.db import Database
from storage.models import AuditLog, Issue
from tests.harness import BALLOT_KEY, ballot_key, serving

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(
    os.environ.get("YISHI_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")
)
PHONE, DESKTOP = (390, 844), (1280, 900)


def _browser_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (Debian's chromium and chromium-driver; `make test` installs them as root)"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database]]:
    """The demo community, served by `yishi serve`'s site; its address."""
    path = tmp_path_factory.mktemp("demo") / "yishi-demo.db"
    url = f"sqlite:///{path}"
    demo.create(url, ballot_key())
    db = Database(url)
    app = App(Config(database_url=url, ballot_key=BALLOT_KEY), db=db)
    app.verify_audit()  # as the clock does
    try:
        with serving(app, app.config) as address:
            yield address, db
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    why = _browser_missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run on CI: {why}")
        pytest.skip(why)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    # a resident's phone, in Chinese (headless Chromium asks for English whatever its flags say)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": "zh-CN,zh;q=0.9"}})
    try:
        yield driver
    finally:
        driver.quit()


def sized(driver, width: int, height: int):  # type: ignore[no-untyped-def]
    driver.set_window_size(width, height)
    # the window's outer size includes nothing headless; the page's width is what matters
    return driver


def shot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def follow(driver, element) -> None:  # type: ignore[no-untyped-def]
    """Click a link or a form's button and wait for the page it leads to."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.wait import WebDriverWait

    element.click()
    WebDriverWait(driver, 10).until(ec.staleness_of(element))


def text_of(driver) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_on_a_phone_the_board_reads_whole_and_leads_to_an_issue(site, chromium) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    address, _ = site
    driver = sized(chromium, *PHONE)
    driver.get(address + "/")
    follow(driver, driver.find_element(By.LINK_TEXT, "梧桐社区"))
    shown = text_of(driver)
    for fragment in ("梧桐社区", "征集附议", "表决中", "办理中", "已结束", "东片区晚上停车难", "附议："):
        assert fragment in shown, fragment
    assert (
        driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    )  # no sideways scroll
    shot(driver, "board-phone")
    follow(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "东片区晚上停车难"))
    shown = text_of(driver)
    assert driver.current_url.endswith("/issues/2") and "已投票" in shown and "经过" in shown
    assert (
        "建议在东门外空地规划临时停车位" not in shown
    )  # comments stay in the chat unless the community shows them
    assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    shot(driver, "issue-phone")


def test_on_a_desktop_the_language_switches_and_stays(site, chromium) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    address, _ = site
    driver = sized(chromium, *DESKTOP)
    driver.get(address + "/c/1")
    assert "征集附议" in text_of(driver)
    follow(driver, driver.find_element(By.LINK_TEXT, "English"))
    shown = text_of(driver)
    assert "Gathering support" in shown and "Being carried out" in shown and "征集附议" not in shown
    shot(driver, "board-desktop-en")
    follow(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "#3"))  # the language goes along
    assert "History" in text_of(driver) and "lang=en" in driver.current_url
    follow(driver, driver.find_element(By.LINK_TEXT, "中文"))
    assert "经过" in text_of(driver)


def test_a_resident_checks_the_hash_they_hold(site, chromium) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    address, db = site
    with db.transaction() as session:
        row = session.scalars(
            select(AuditLog).where(AuditLog.action == "status").order_by(AuditLog.id)
        ).first()
        assert row is not None
        held, seq = row.hash, row.seq
    driver = sized(chromium, *PHONE)
    driver.get(address + "/c/1/audit")
    assert "全部" in text_of(driver) and "行完好" in text_of(driver)  # verified, as the clock does
    box = driver.find_element(By.ID, "hash")
    box.send_keys(held)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form button"))
    assert f"在：它是链上第 {seq} 行" in driver.find_element(By.ID, "answer").text
    shot(driver, "audit-phone")
    box = driver.find_element(By.ID, "hash")
    box.clear()
    box.send_keys("not a hash")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form button"))
    assert "这不是哈希值" in driver.find_element(By.ID, "answer").text


def test_the_notice_prints_on_one_a4_page_with_its_outcome(site, chromium) -> None:  # type: ignore[no-untyped-def]
    import base64

    from pypdf import PdfReader
    from selenium.webdriver.common.print_page_options import PrintOptions

    address, db = site
    with db.transaction() as session:
        decided = session.scalar(
            select(Issue.id).where(Issue.status.in_(("acting", "passed"))).order_by(Issue.id)
        )
    driver = sized(chromium, *DESKTOP)
    driver.get(f"{address}/c/1/issues/{decided}/notice?lang=en")
    assert "Notice" in text_of(driver)
    shot(driver, "notice-desktop")
    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7  # A4, in centimetres
    pdf = base64.b64decode(driver.print_page(options))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "notice.pdf").write_bytes(pdf)
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 1
    printed = "".join(pages[0].extract_text().split())  # the letters, however the PDF spaced them
    assert "Outcome:Passed" in printed and "Notice" in printed and "Printthispage" not in printed
