"""The console in a real browser: headless Chromium against a live server.

An admin logs in, opens the dashboard, reverses a transaction through its confirmation
page, and sees the balances move back; the API docs page renders Swagger UI from the app's
own static files. Screenshots land in `test-artifacts/`.
"""

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from audit.reconciliation import reconcile
from balances.models import Balance
from tests.accounts.factories import PASSWORD, UserFactory
from transactions import services as money_services
from transactions.models import Transaction, TransactionStatus

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _browser_missing() -> str | None:
    for label, binary in (("Chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not Path(binary).exists():
            return (
                f"{label} is not installed at {binary}; install the `chromium` and "
                "`chromium-driver` packages (`make test` does it when it can)."
            )
    return None


@pytest.fixture
def browser():
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wallet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(target))
    return target


def test_admin_reverses_a_transaction_in_the_browser(browser, live_server):
    from selenium.webdriver.common.by import By

    # given an admin, and a completed transfer of 30.00 USD from sender to recipient
    staff = UserFactory(role="admin", is_staff=True, username="ops.alice")
    sender = UserFactory(role="user", username="sender.bob")
    recipient = UserFactory(role="user", username="recipient.carol")
    money_services.credit(
        actor=staff, user=sender, amount=Decimal("100.00"), currency="USD", description="top-up"
    )
    money_services.credit(
        actor=staff, user=sender, amount=Decimal("25.00"), currency="EUR", description="top-up"
    )
    txn = money_services.transfer(
        actor=sender,
        sender=sender,
        recipient=recipient,
        amount=Decimal("30.00"),
        currency="USD",
        description="concert tickets",
    )
    reconcile()

    # when the admin logs in through the login form
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(staff.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # then the console opens, with the operations panel
    assert browser.find_element(By.ID, "operations-module").is_displayed()

    # when the admin opens the dashboard
    browser.find_element(By.LINK_TEXT, "Open the operations dashboard").click()
    # then today's activity and the last reconciliation are there
    assert "Operations dashboard" in browser.title
    activity = browser.find_element(By.ID, "activity-by-type").text
    assert "Transfer" in activity
    assert "Reconciled" in browser.find_element(By.ID, "reconciliation-card").text
    _screenshot(browser, "admin-dashboard.png")

    # when the admin opens the transaction and asks to reverse it
    browser.get(f"{live_server.url}/admin/transactions/transaction/{txn.pk}/change/")
    browser.find_element(By.CSS_SELECTOR, "a.wallet-op-reverse").click()
    # then a confirmation page asks for a reason
    assert "Reverse transaction" in browser.find_element(By.ID, "content").text
    browser.find_element(By.NAME, "reason").send_keys("Customer dispute #4711: tickets refunded")
    _screenshot(browser, "admin-reverse-confirmation.png")
    browser.find_element(By.CSS_SELECTOR, "#wallet-confirm-form input[type=submit]").click()

    # then the success message shows and the money is back with the sender
    assert "reversed by" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.REVERSED
    assert Balance.objects.get(user=sender, currency="USD").amount == Decimal("100.00")
    assert Balance.objects.get(user=recipient, currency="USD").amount == Decimal("0.00")
    reversal = Transaction.objects.get(reversal_of=txn)
    assert reversal.initiated_by_id == staff.pk

    # when the admin opens the sender's page
    browser.get(f"{live_server.url}/admin/accounts/user/{sender.pk}/change/")
    # then the balances, the chart and the recent transactions are shown
    balances = browser.find_element(By.ID, "user-balances").text
    assert "100.00" in balances
    assert "25.00" in balances
    assert browser.find_elements(By.CSS_SELECTOR, "#user-balance-chart svg path.line")
    assert "reversal" in browser.find_element(By.ID, "user-transactions").text
    _screenshot(browser, "admin-user-page.png")


def test_the_api_docs_render_swagger_ui_from_the_apps_own_assets(browser, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    # when the docs page is opened
    browser.get(f"{live_server.url}/api/docs/")
    # then Swagger UI rendered the schema: its title, and the operations listed
    WebDriverWait(browser, 20).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".swagger-ui .info .title"), "Wallet API"
        )
    )
    paths = [
        element.text
        for element in browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock-summary-path")
    ]
    assert "/api/v1/transactions/transfer/" in paths, paths
    assert "/api/v1/auth/login/" in paths, paths
    assert len(paths) >= 20, paths
    # and every script, style and image came from the app itself
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert any(url.endswith("swagger-ui-bundle.js") for url in loaded), loaded
    outside = [url for url in loaded if not url.startswith(live_server.url)]
    assert not outside, outside
    _screenshot(browser, "api-docs.png")
