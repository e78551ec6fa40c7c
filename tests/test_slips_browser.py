"""Invitation slips in a real browser: the page `yishi invites --format html --building 1栋` writes,
with the bot configured (the fake Bot API tells its username), opened in Debian's Chromium,
printed to PDF with every code on it, and each slip's QR code decoded from the rendered page to
its Telegram deep link. (The browser as in tests/test_board_browser.py.)"""

from __future__ import annotations

import base64
import io
import re
import subprocess
from pathlib import Path

from sqlalchemy import select

from storage.db import Database
from storage.models import Household, Invite, Person, Scope
from tests.conftest import REGISTER
from tests.fake_telegram import BOT_USER, FakeTelegram, running
from tests.harness import YISHI
from tests.test_board_browser import ARTIFACTS, chromium, follow, shot, sized  # noqa: F401  (fixtures)
from tests.test_telegram_web import env_for


def test_the_slips_of_a_building_print_with_every_code_and_qr_codes_that_open_the_bot(
    sqlite_db: Database,
    tmp_path: Path,
    chromium,  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    import zxingcpp
    from PIL import Image
    from pypdf import PdfReader
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.print_page_options import PrintOptions

    with running(FakeTelegram()) as fake:
        env = env_for(sqlite_db, fake, YISHI_LOCALE="zh_CN", WECHAT_ACCOUNT_NAME="梧桐社区议事")
        assert (
            subprocess.run(
                [YISHI, "import", str(REGISTER)], env=env, capture_output=True, check=False
            ).returncode
            == 0
        )
        done = subprocess.run(
            [YISHI, "invites", "--format", "html", "--building", "1栋"],
            env=env, capture_output=True, text=True, encoding="utf-8", check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite_db.transaction() as session:
        codes = set(
            session.scalars(
                select(Invite.code)
                .join(Person, Person.id == Invite.person_id)
                .join(Household, Household.id == Person.household_id)
                .join(Scope, Scope.id == Household.building_id)
                .where(Scope.name == "1栋", Invite.used_at.is_(None))
            )
        )
    assert len(codes) >= 6
    page = tmp_path / "slips.html"
    page.write_text(done.stdout, encoding="utf-8")
    driver = sized(chromium, 900, 1200)
    driver.get(page.as_uri())
    shown = driver.find_element(By.TAG_NAME, "body").text
    assert (
        "微信：关注公众号「梧桐社区议事」，发送：加入" in shown
        and "Telegram：用手机相机扫右边的方码" in shown
    )
    shot(driver, "slips")
    for slip in driver.find_elements(By.CSS_SELECTOR, "section.slip"):
        code = slip.find_element(By.CSS_SELECTOR, "p.code").text
        square = Image.open(io.BytesIO(slip.find_element(By.CSS_SELECTOR, ".qr svg").screenshot_as_png))
        found = zxingcpp.read_barcodes(square)
        assert [r.text for r in found] == [f"https://t.me/{BOT_USER['username']}?start=join_{code}"], code
    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7
    pdf = base64.b64decode(driver.print_page(options))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "slips.pdf").write_bytes(pdf)
    printed = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert set(re.findall(r"[A-Z2-9]{8}", printed)) >= codes
