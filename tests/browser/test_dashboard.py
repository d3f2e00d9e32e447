"""The dashboard in headless Chromium, over a replay played in the same process as the API.

One story in order (one browser, one page, never reloaded): sign in with the development
identity; watch a target go watching → ready → filled and its position open and close; press
the emergency stop and see a snipe refused; close a position by hand; see bad settings and a bad
exit plan refused with the domain's message; store, rotate and delete keys; save notification
settings (a bad one refused with the API's message) and see them in a new tab; see an undelivered
message; link Telegram with a one-time code; amend and cancel a target; read a timeline; run a
backtest. Amounts are shown without trailing zeros, exactly (money.js, string arithmetic).
Then: no request left the page's origin, the keyboard reaches every section, axe-core finds
nothing serious, and the page fits a phone.
With SNIPER_SCREENSHOTS=1 it writes the README's screenshots (docs/screenshots/).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import SCREENSHOTS, screenshots_wanted
from tests.browser.harness import QUICK_PLAN, Bench
from tests.conftest import services_required

try:
    from playwright.sync_api import expect
except ImportError:  # the dev extra is not installed: a failure in CI, a skip on a laptop
    if services_required():
        raise
    pytest.skip("the browser tests need Playwright's client: .venv/bin/pip install -e '.[dev]'",
                allow_module_level=True)
WAIT = 15_000  # ms: what the page may take to show what the replay recorded
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    bench = Bench(Path(tmp_path_factory.mktemp("cockpit")))
    bench.start()
    try:
        # The trader's own plan, saved through the API so the page draws its lines.
        with httpx.Client(base_url=bench.url, headers={"Authorization": "Bearer dev"}) as api:
            api.put("/api/v1/exit-strategies/quick", json=QUICK_PLAN).raise_for_status()
        bench.analyse("delta-4", "DELTAUSDT", "72", "A known team and a listing pattern like ALPHA's.")
        bench.heartbeat("calendar", True, "4 listings known")
        bench.heartbeat("positions", True, "following the open positions")
        bench.undelivered("exit", "webhook", "BETAUSDT: take-profit sold 50%", "Sold 5 BETA at 2.42.",
                          "HTTP 500 from the receiver")
        yield bench
    finally:
        bench.stop()


class Recorder:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.sockets: list[str] = []
        self.console_errors: list[str] = []


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def page(browser, bench: Bench, recorder: Recorder):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    context.on("request", lambda request: recorder.requests.append(request.url))
    page = context.new_page()
    page.on("websocket", lambda socket: recorder.sockets.append(socket.url))
    page.on("console", lambda m: recorder.console_errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(WAIT)
    page.goto(bench.url + "/")
    yield page
    context.close()


def shot(target, name: str) -> None:  # noqa: ANN001
    if screenshots_wanted():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def go(page, section: str) -> None:  # noqa: ANN001
    page.get_by_role("link", name=section, exact=True).click()
    expect(page.locator(f"#{section.lower()}")).to_be_visible()


def target_row(page, symbol: str):  # noqa: ANN001, ANN201
    return page.locator(f'#targets-table tr[data-symbol="{symbol}"]')


def sign_in(page) -> None:  # noqa: ANN001
    page.get_by_label("Bearer token").fill("dev")
    page.get_by_role("button", name="Use this token").click()
    expect(page.locator("#who")).to_have_text("Signed in as local")


# A quote amount as the page shows it: no trailing zeros past the second decimal.
SHOWN_MONEY = re.compile(r"^[+-]?\d+\.(\d{2}|\d*[1-9])$")


def _seconds(hms: str) -> int:
    hours, minutes, seconds = (int(part) for part in hms.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def after(label: str, moment) -> int:  # noqa: ANN001
    """How many seconds the chart's HH:MM:SS `label` is after `moment` (UTC), modulo a day."""
    return (_seconds(label) - _seconds(moment.strftime("%H:%M:%S"))) % 86_400


def test_signs_in_with_the_development_identity(page) -> None:  # noqa: ANN001
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#dev-banner")).to_be_hidden()
    sign_in(page)
    banner = page.locator("#dev-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("DEVELOPMENT IDENTITY")
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#stop-state")).to_have_text("Trading: no emergency stop")
    expect(page.locator("#agents")).to_contain_text("calendar (replay-1)")
    expect(page.locator("#agents")).to_contain_text("healthy")


def test_a_target_goes_watching_ready_filled_and_its_position_closes(page, bench: Bench) -> None:  # noqa: ANN001
    m = bench.moments
    go(page, "Listings")
    bench.replay_until(m.start + timedelta(minutes=1))
    alpha = target_row(page, "ALPHAUSDT")
    expect(alpha).to_have_attribute("data-status", "watching")
    # The upcoming launch, counted down live, with the trader's target on it.
    delta = page.locator('#calendar [data-symbol="DELTAUSDT"]')
    expect(delta.locator(".countdown")).to_have_text(re.compile(r"^in \d\d:\d\d:\d\d$"))
    first = delta.locator(".countdown").inner_text()
    expect(delta.locator(".countdown")).not_to_have_text(first)  # it ticks
    expect(delta.locator(".analysis summary")).to_have_text("Analysis: score 72 of 100 (rules)")
    bench.replay_until(m.ready + timedelta(minutes=1))
    expect(alpha).to_have_attribute("data-status", re.compile("ready|scheduled"))
    expect(alpha.locator(".status")).to_contain_text("ready")
    bench.replay_until(m.first_launch + timedelta(seconds=30))
    expect(alpha).to_have_attribute("data-status", "filled")
    # (a refresh may also catch the buy in flight: "executing")
    expect(alpha.locator(".seen")).to_contain_text(re.compile(r"watching → ready[^→]*( → executing)? → filled"))
    go(page, "Positions")
    expect(page.locator('#open-positions [data-symbol="ALPHAUSDT"]')).to_be_visible()
    bench.replay_until(m.first_closed)
    closed = page.locator('#closed-table tr[data-symbol="ALPHAUSDT"]')
    expect(closed).to_be_visible()
    expect(closed).to_contain_text("TakeProfitHit")
    expect(page.locator('#open-positions [data-symbol="ALPHAUSDT"]')).to_have_count(0)
    go(page, "Overview")
    expect(page.locator("#pnl-total")).to_contain_text("+")
    for figure in ("#pnl-today", "#pnl-total", "#pnl-fees"):
        expect(page.locator(figure)).to_have_text(SHOWN_MONEY)


def test_the_emergency_stop_refuses_a_snipe(page, bench: Bench) -> None:  # noqa: ANN001
    m = bench.moments
    bench.replay_until(m.second_launch + timedelta(minutes=10))  # BETA bought: held for the next test
    go(page, "Overview")
    page.get_by_role("button", name="Press the emergency stop").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").fill("browser test")
    dialog.get_by_role("button", name="Halt trading").click()
    expect(page.locator("#stop-state")).to_contain_text("HALTED")
    expect(page.locator("#stop-detail")).to_contain_text("browser test")
    expect(page.locator("#stop-detail")).to_contain_text("by local")
    shot(page, "overview")
    go(page, "Listings")
    bench.replay_until(m.third_launch + timedelta(minutes=1))
    gamma = target_row(page, "GAMMAUSDT")
    expect(gamma).to_have_attribute("data-status", "failed")
    expect(gamma).to_contain_text(re.compile("emergency stop", re.IGNORECASE))
    shot(page, "listings")
    go(page, "Overview")
    page.get_by_role("button", name="Clear the emergency stop").click()
    page.get_by_role("dialog").get_by_role("button", name="Resume trading").click()
    expect(page.locator("#stop-state")).to_have_text("Trading: no emergency stop")


def test_closes_a_position_by_hand(page, bench: Bench) -> None:  # noqa: ANN001
    go(page, "Positions")
    card = page.locator('#open-positions [data-symbol="BETAUSDT"]')
    expect(card).to_be_visible()
    chart = card.locator("svg.chart")
    expect(chart.locator("path.series")).to_have_count(1)
    expect(chart.locator(".hline.tp")).to_have_count(1)
    expect(chart.locator(".hline.sl")).to_have_count(1)
    expect(chart.locator(".hline.trail")).to_have_count(1)
    expect(card.locator(".figures")).not_to_contain_text(re.compile(r"\.\d*000"))
    # One clock along the x axis: the position's events are stamped in the replay's time, and the
    # prices the page received are put on that clock too (not on the wall clock, an hour later):
    # the axis runs from BETA's entry to about where the replay stands.
    m = bench.moments
    times = [t for t in chart.locator(".axis text").all_text_contents() if re.fullmatch(r"\d\d:\d\d:\d\d", t)]
    assert len(times) == 2, times
    assert after(times[0], m.second_launch) < 120, (times, m.second_launch)
    replayed = (m.third_launch - m.second_launch).total_seconds()
    assert after(times[1], m.second_launch) < replayed + 600, (times, m.second_launch)
    shot(card, "position")
    card.get_by_role("button", name="Close BETAUSDT now").click()
    page.get_by_role("dialog").get_by_role("button", name="Close now").click()
    closed = page.locator('#closed-table tr[data-symbol="BETAUSDT"]')
    expect(closed).to_be_visible()
    expect(card).to_have_count(0)


def test_a_bad_exit_plan_is_refused_with_the_domains_message(page, bench: Bench) -> None:  # noqa: ANN001
    go(page, "Settings")
    expect(page.get_by_label("Quote amount per snipe")).not_to_have_value("")
    page.get_by_label("Quote amount per snipe").fill("500")
    page.get_by_role("button", name="Save settings").click()
    refusal = "quote amount 500 exceeds the risk profile's per-snipe limit 100"
    expect(page.locator("#settings-error")).to_have_text(refusal)
    page.get_by_label("Quote amount per snipe").fill("25")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#notice")).to_have_text("Settings saved.")
    expect(page.locator("#settings-error")).to_be_empty()
    bad = {"take_profits": [{"gain_percent": "20", "sell_percent": "150"}], "stop_loss_percent": "10"}
    with httpx.Client(base_url=bench.url, headers={"Authorization": "Bearer dev"}) as api:
        answer = api.put("/api/v1/exit-strategies/greedy", json=bad)
    assert answer.status_code == 422, answer.text
    message = answer.json()["detail"]
    page.get_by_label("Name (lower case").fill("greedy")
    page.get_by_label("Level 1: gain %").fill("20")
    page.get_by_label("sell %").fill("150")
    page.get_by_label("Stop-loss").fill("10")
    expect(page.locator("#plan-ladder")).to_contain_text("sell 150%")
    page.get_by_role("button", name="Save exit plan").click()
    expect(page.locator("#plan-error")).to_have_text(message)
    page.get_by_label("sell %").fill("60")
    page.get_by_role("button", name="Save exit plan").click()
    expect(page.locator("#plan-error")).to_be_empty()
    expect(page.locator("#strategies")).to_contain_text("greedy")


def test_stores_rotates_and_deletes_credentials_showing_only_the_hint(page) -> None:  # noqa: ANN001
    go(page, "Settings")
    expect(page.locator("#cred-summary")).to_have_text("No MEXC keys stored.")
    page.get_by_label("API key").fill("mx0vglabcdefghijklmn")
    page.get_by_label("Secret key").fill("0123456789abcdef0123456789abcdef")
    page.get_by_role("button", name="Store or rotate").click()
    expect(page.locator("#cred-summary")).to_contain_text("Stored: key mx0v…klmn (")
    expect(page.get_by_label("Secret key")).to_have_value("")
    page.get_by_label("API key").fill("mx0vgzyxwvutsrqponmlk")
    page.get_by_label("Secret key").fill("fedcba9876543210fedcba9876543210")
    page.get_by_role("button", name="Store or rotate").click()
    expect(page.locator("#cred-summary")).to_contain_text("Stored: key mx0v…nmlk (")
    assert "0123456789abcdef" not in page.content() and "fedcba9876543210" not in page.content()
    page.get_by_role("button", name="Delete the stored keys").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete the keys").click()
    expect(page.locator("#cred-summary")).to_have_text("No MEXC keys stored.")


def test_saves_notification_settings_and_shows_them_in_a_new_tab(page, bench: Bench) -> None:  # noqa: ANN001
    go(page, "Settings")
    undelivered = page.locator("#undelivered-table tr", has_text="BETAUSDT: take-profit sold 50%")
    expect(undelivered).to_contain_text("HTTP 500 from the receiver")
    expect(undelivered).to_contain_text("webhook")
    expect(page.get_by_label("Send to Telegram")).not_to_be_checked()
    # A chat id Telegram cannot have: refused with the API's own message.
    bad = {"channels": [{"kind": "telegram", "enabled": True, "address": "my chat"}]}
    with httpx.Client(base_url=bench.url, headers={"Authorization": "Bearer dev"}) as api:
        answer = api.put("/api/v1/notifications", json=bad)
    assert answer.status_code == 422, answer.text
    page.get_by_label("Send to Telegram").check()
    page.get_by_label("Telegram: Chat id").fill("my chat")
    page.get_by_role("button", name="Save notification settings").click()
    expect(page.locator("#notify-error")).to_have_text(answer.json()["detail"])
    secret = "https://discord.com/api/webhooks/42/very-secret-token"
    page.get_by_label("Telegram: Chat id").fill("-100123456")
    page.get_by_label("Send to Discord").check()
    page.get_by_label("Discord: Discord webhook URL").fill(secret)
    page.get_by_label("Each exit").select_option("silent")
    page.get_by_label("Target created").select_option("off")
    page.get_by_label("Time of the daily summary").fill("07:30")
    page.get_by_role("button", name="Save notification settings").click()
    expect(page.locator("#notice")).to_have_text("Notification settings saved.")
    expect(page.locator("#notify-error")).to_be_empty()
    expect(page.locator("#notify-discord-secret-state")).to_have_text("Stored secret: set")
    expect(page.get_by_label("Discord: Discord webhook URL")).to_have_value("")
    assert "very-secret-token" not in page.content()
    # Another tab, signed in afresh, reads them back from the API.
    other = page.context.new_page()
    try:
        other.set_default_timeout(WAIT)
        other.goto(bench.url + "/#settings")
        sign_in(other)
        expect(other.get_by_label("Telegram: Chat id")).to_have_value("-100123456")
        expect(other.get_by_label("Send to Telegram")).to_be_checked()
        expect(other.get_by_label("Send to Discord")).to_be_checked()
        expect(other.locator("#notify-discord-secret-state")).to_have_text("Stored secret: set")
        expect(other.locator("#notify-slack-secret-state")).to_have_text("Stored secret: not set")
        expect(other.get_by_label("Each exit")).to_have_value("silent")
        expect(other.get_by_label("Target created")).to_have_value("off")
        expect(other.get_by_label("Snipe filled")).to_have_value("on")
        expect(other.get_by_label("Time of the daily summary")).to_have_value("07:30")
        assert "very-secret-token" not in other.content()
    finally:
        other.close()
    with httpx.Client(base_url=bench.url, headers={"Authorization": "Bearer dev"}) as api:
        stored = api.get("/api/v1/notifications").json()
    assert stored["kinds"]["exit"] == "silent" and stored["daily_summary_at"] == "07:30"
    assert {c["kind"]: c["secret_set"] for c in stored["channels"]} == {"telegram": False, "discord": True}


def test_links_telegram_with_a_one_time_code(page, bench: Bench) -> None:  # noqa: ANN001
    go(page, "Settings")
    with bench.without_telegram():
        with httpx.Client(base_url=bench.url, headers={"Authorization": "Bearer dev"}) as api:
            answer = api.post("/api/v1/telegram/link")
        assert answer.status_code == 422, answer.text
        page.get_by_role("button", name="Get a link code").click()
        expect(page.locator("#telegram-error")).to_have_text(answer.json()["detail"])
    page.get_by_role("button", name="Get a link code").click()
    code = page.locator("#telegram-link-code")
    expect(code).to_have_text(re.compile(r"^[A-Z2-9]{10}$"))
    expect(page.locator("#telegram-error")).to_be_empty()
    expect(page.locator("#telegram-bot")).to_have_text("@sniper_test_bot")
    expect(page.locator("#telegram-expires")).to_contain_text(re.compile(r"UTC \(single use\)$"))
    expect(page.locator("#telegram-command")).to_have_text(f"/link {code.inner_text()}")
    shot(page.locator("#notify-panel"), "notifications")
    assert bench.redeem_telegram(4242, code.inner_text()) == "local"  # the chat sent /link CODE to the bot
    page.get_by_role("button", name="Unlink my Telegram chats").click()
    page.get_by_role("dialog").get_by_role("button", name="Unlink").click()
    expect(page.locator("#notice")).to_contain_text("Telegram unlinked")
    expect(page.locator("#telegram-code")).to_be_empty()
    page.get_by_role("button", name="Unlink my Telegram chats").click()
    page.get_by_role("dialog").get_by_role("button", name="Unlink").click()
    expect(page.locator("#telegram-error")).to_have_text("no Telegram chat is linked to you")


def test_shows_amounts_exactly_without_trailing_zeros(page) -> None:  # noqa: ANN001
    shown = page.evaluate("""async () => {
        const m = await import("/static/money.js");
        return [m.quote("20.0100000000"), m.quote("4.9775000000"), m.quote("100"), m.quote("-0.5000"),
                m.quantity("10.00"), m.price("0.0000012300"), m.signedText("4.9775000000"), m.signedText("0.000"),
                m.sum(["0.1", "0.2"]), m.sum(["1.000000000000000001", "-0.000000000000000001"]),
                m.quote("123456789012345678.123456789012345678"), m.negate("-3.50"), m.amount("-0.000"),
                m.amount("n/a"), m.amount(null)];
    }""")
    assert shown == ["20.01", "4.9775", "100.00", "-0.50", "10", "0.00000123", "+4.9775", "0.00", "0.3", "1",
                     "123456789012345678.123456789012345678", "3.5", "0", "n/a", "–"]


def test_amends_and_cancels_a_target(page) -> None:  # noqa: ANN001
    go(page, "Listings")
    card = page.locator('#calendar [data-symbol="DELTAUSDT"]')
    card.get_by_label("Quote amount for DELTAUSDT").fill("30")
    card.get_by_role("button", name="Amend").click()
    expect(target_row(page, "DELTAUSDT").locator("td.num").first).to_have_text("30.00")
    card.get_by_role("button", name="Cancel target").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel the target").click()
    expect(target_row(page, "DELTAUSDT")).to_have_attribute("data-status", "cancelled")


def test_shows_a_targets_timeline(page) -> None:  # noqa: ANN001
    go(page, "History")
    gamma = page.locator("#timeline-target option", has_text="GAMMAUSDT").get_attribute("value")
    page.get_by_label("Timeline of target").select_option(gamma)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#timeline table")).to_contain_text("SnipeTargetCreated")
    expect(page.locator("#audit table")).to_be_visible()


def test_runs_a_backtest_and_draws_its_equity(page) -> None:  # noqa: ANN001
    go(page, "Backtests")
    page.get_by_role("button", name="Run a backtest over the bundled listings").click()
    table = page.locator("#backtest-table table")
    expect(table).to_contain_text("balanced")
    expect(table).to_contain_text("greedy")  # the trader's own plan, saved above
    rows = table.locator("tbody tr").count()
    expect(page.locator("#backtest-chart svg path.series")).to_have_count(rows)
    page.get_by_label("Fee rate per fill").fill("0.5")
    page.get_by_role("button", name="Run a backtest over the bundled listings").click()
    expect(page.locator("#backtest-error")).to_contain_text("fee rate must be at least 0 and below 0.1")


def test_no_request_leaves_the_origin(page, bench: Bench, recorder: Recorder) -> None:  # noqa: ANN001
    origin = bench.url + "/"
    assert recorder.requests, "no request recorded"
    outside = [u for u in recorder.requests if not u.startswith(origin)]
    assert outside == []
    assert recorder.sockets == [f"ws://127.0.0.1:{bench.port}/api/v1/stream"]
    csp = [text for text in recorder.console_errors if "Content Security Policy" in text]
    assert csp == []


def test_the_keyboard_reaches_every_section_and_axe_finds_nothing_serious(page) -> None:  # noqa: ANN001
    from axe_playwright_python.sync_playwright import Axe

    page.locator("#dev-banner").click()  # the keyboard's starting point: the top of the page
    found = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        if focused.get_attribute("data-section") == "history":
            page.keyboard.press("Enter")
            break
        found.append(focused.inner_text())
    assert found == ["Sign out", "Overview", "Listings", "Positions"]
    expect(page.locator("#history")).to_be_visible()
    expect(page.locator("#history-title")).to_be_focused()
    expect(page.locator("#audit table")).to_be_visible()
    axe = Axe()
    serious = []
    for section in ("overview", "listings", "positions", "history", "settings", "backtests"):
        page.evaluate(f"location.hash = '#{section}'")
        expect(page.locator(f"#{section}")).to_be_visible()
        results = axe.run(page)
        serious += [f"{section}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                    for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


def test_fits_a_phone(page) -> None:  # noqa: ANN001
    page.set_viewport_size({"width": 390, "height": 844})
    for section in ("overview", "listings", "positions", "settings"):
        page.evaluate(f"location.hash = '#{section}'")
        expect(page.locator(f"#{section}")).to_be_visible()
        if section == "overview":
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, "phone-overview")
        elif section == "settings":
            shot(page.locator("#notify-panel"), "phone-notifications")
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('.table-wrap'))
            .slice(0, 5).map((e) => `${e.tagName}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)""")
        assert width <= 390, f"{section} is {width} px wide at a phone's 390: {wide}"


def test_a_token_in_a_link_this_tab_did_not_start_is_ignored(browser, bench: Bench) -> None:  # noqa: ANN001
    """Login CSRF: a link carrying someone's token (`/#access_token=...`) must not sign this tab in
    as them (the victim would then store their MEXC keys in the sender's account). Only the return
    of a sign-in started here by its button is taken."""
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(bench.url + "/#access_token=dev")
        expect(page.locator("#sign-in-error")).to_contain_text("did not start")
        expect(page.locator("#sign-in")).to_be_visible()
        assert "access_token" not in page.url
        assert page.evaluate("sessionStorage.getItem('sniper.token')") is None
        # A sign-in started here (the button marks the tab before leaving for Kinde) is taken on return.
        page.evaluate("sessionStorage.setItem('sniper.sign-in-started', '1')")
        page.goto("about:blank")  # away and back, as from Kinde: the page loads anew, this tab's storage kept
        page.goto(bench.url + "/#access_token=dev")
        expect(page.locator("#who")).to_contain_text("Signed in as")
    finally:
        context.close()


def test_pages_the_audit_trail_with_the_apis_cursor(page, bench: Bench) -> None:  # noqa: ANN001
    """Last: it adds 60 events to the trader's history, so the audit trail has more than a page."""
    from datetime import UTC, datetime

    from tests.browser.harness import USER
    from tests.http.support import seed_position

    async def seed() -> None:
        for i in range(30):
            await seed_position(bench.replay.store, USER, f"PAGE{i:02d}", datetime(2030, 1, 1, tzinfo=UTC))

    bench.call(seed)
    go(page, "History")
    page.get_by_role("button", name="First page").click()
    rows = page.locator("#audit table tbody tr")
    expect(page.locator("#audit-page")).to_have_text("page 1")
    expect(rows).to_have_count(50)
    first = rows.first.locator("td").first.inner_text()  # its event's position
    for number in range(2, 20):  # on to the last page, each after the page before has loaded
        page.get_by_role("button", name="Next page").click()
        expect(page.locator("#audit-page")).to_contain_text(f"page {number}")
        expect(rows.first.locator("td").first).not_to_have_text(first)
        if "(last)" in page.locator("#audit-page").inner_text():
            break
    expect(page.locator("#audit-next")).to_be_disabled()
    expect(page.locator("#audit table")).to_contain_text("PAGE29")
    page.get_by_role("button", name="First page").click()
    expect(page.locator("#audit-page")).to_have_text("page 1")
    expect(rows.first.locator("td").first).to_have_text(first)
