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

from sqlalchemy import select, update

from storage.db import Database
from storage.models import Household, Invite, Person, Scope
from tests.conftest import REGISTER
from tests.fake_telegram import BOT_USER, FakeTelegram, running
from tests.harness import YISHI
from tests.test_board_browser import ARTIFACTS, chromium, follow, shot, sized  # noqa: F401  (fixtures)
from tests.test_telegram_web import env_for


def slips_page(db: Database, tmp_path: Path, locale: str) -> tuple[Path, set[str]]:
    """`yishi invites --format html --building 1栋` with the bot and the Official Account configured;
    the page's file and the codes it should carry. One resident has a very long name."""
    with running(FakeTelegram()) as fake:
        env = env_for(db, fake, YISHI_LOCALE=locale, WECHAT_ACCOUNT_NAME="梧桐社区议事")
        if not (tmp_path / "imported").exists():
            assert (
                subprocess.run(
                    [YISHI, "import", str(REGISTER)], env=env, capture_output=True, check=False
                ).returncode
                == 0
            )
            (tmp_path / "imported").touch()
            with db.transaction() as session:
                session.execute(update(Person).where(Person.name == "王芳").values(name="王" + "芳" * 60))
        done = subprocess.run(
            [YISHI, "invites", "--format", "html", "--building", "1栋"],
            env=env, capture_output=True, text=True, encoding="utf-8", check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with db.transaction() as session:
        codes = set(
            session.scalars(
                select(Invite.code)
                .join(Person, Person.id == Invite.person_id)
                .join(Household, Household.id == Person.household_id)
                .join(Scope, Scope.id == Household.building_id)
                .where(Scope.name == "1栋", Invite.used_at.is_(None))
            )
        )
    page = tmp_path / f"slips-{locale}.html"
    page.write_text(done.stdout, encoding="utf-8")
    return page, codes


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

    for locale, words in (
        ("zh_CN", "微信：关注公众号「梧桐社区议事」，发送：加入"),
        ("en", "WeChat: follow the Official Account"),
    ):
        page, codes = slips_page(sqlite_db, tmp_path, locale)
        assert len(codes) >= 6
        driver = sized(chromium, 794, 1123)  # an A4 page at 96 dpi
        driver.get(page.as_uri())
        assert words in driver.find_element(By.TAG_NAME, "body").text
        shot(driver, f"slips-{locale}")
        clipped = driver.execute_script(
            "return [...document.querySelectorAll('.slip')].filter(s => s.scrollHeight > s.clientHeight + 1).length"
        )
        assert clipped == 0  # every line of every slip shows: nothing is cut off by its box
        options = PrintOptions()
        options.page_width, options.page_height = 21.0, 29.7
        pdf = base64.b64decode(driver.print_page(options))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"slips-{locale}.pdf").write_bytes(pdf)
        pages = PdfReader(io.BytesIO(pdf)).pages
        assert len(pages) == -(-len(codes) // 8)  # eight slips to a page
        printed = "".join(p.extract_text() for p in pages)
        assert set(re.findall(r"[A-Z2-9]{8}", printed)) >= codes
        # each square read as a phone would: drawn large enough for the screen's pixels
        driver.execute_script(
            "document.querySelectorAll('.qr svg').forEach(q => { q.style.width = q.style.height = '60mm'; })"
        )
        for slip in driver.find_elements(By.CSS_SELECTOR, "section.slip"):
            code = slip.find_element(By.CSS_SELECTOR, "p.code").text
            square = Image.open(io.BytesIO(slip.find_element(By.CSS_SELECTOR, ".qr svg").screenshot_as_png))
            found = zxingcpp.read_barcodes(square)
            assert [r.text for r in found] == [f"https://t.me/{BOT_USER['username']}?start=join_{code}"], code
