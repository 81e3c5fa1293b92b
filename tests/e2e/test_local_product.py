"""The whole product on `make run` (`studiox dev run`, no STRIPE_SECRET_KEY): the local Stripe with
its checkout page, driven in headless chromium, signed webhooks, plan changes and renewals through
`studiox dev pay` / `advance-clock`, and the demo worker finishing tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_tasks import signed_up
from tests.support.browser import Page, chromium
from tests.support.database import drop_database, new_database
from tests.support.dirs import server_tempdir
from tests.support.stack import patched_environ, stack_environment

READY_WITHIN_SECONDS = 90


@dataclass
class Product:
    base: str
    env: dict[str, str]
    output: list[str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=15)

    def studiox(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "studiox_cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def product() -> Iterator[Product]:
    database_url = (
        new_database(os.environ["DATABASE_URL"]) if "DATABASE_URL" in os.environ else None
    )
    with server_tempdir("product") as folder:
        overrides = {**stack_environment(folder / "state", database_url), "STUDIOX_DEV_WORKER": "1"}
        stripe_vars = tuple(k for k in os.environ if k.startswith("STRIPE_"))
        removed = stripe_vars + (() if database_url else ("DATABASE_URL",))
        with patched_environ(overrides, remove=removed):
            env = dict(os.environ)
        proc = subprocess.Popen(
            [sys.executable, "-m", "studiox_cli", "dev", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line)
                if "Ctrl-C stops everything" in line:
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert ready.wait(READY_WITHIN_SECONDS), "no banner:\n" + "".join(output[-60:])
            yield Product(f"http://127.0.0.1:{overrides['PORT']}", env, output)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reader.join(5)
            if database_url:
                drop_database(database_url)


def credits(http: httpx.Client, user: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/api/users/credits", headers=user).json()["credits"]
    return body


def wait_credits(
    http: httpx.Client, user: dict[str, str], field: str, wanted: Any, within: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        current = credits(http, user)
        if current[field] == wanted:
            return current
        assert time.monotonic() < deadline, f"{field} is {current[field]}, not {wanted}"
        time.sleep(0.1)


def checkout_url(http: httpx.Client, user: dict[str, str], path: str, body: dict[str, Any]) -> str:
    reply = http.post(path, json=body, headers=user)
    assert reply.status_code == 200, reply.text
    url = str(reply.json()["checkoutUrl"])
    assert url.startswith("http://localhost:"), url
    return url


def test_the_banner_lists_what_runs(product: Product) -> None:
    banner = "".join(product.output)
    assert "local Stripe" in banner
    assert "4242 4242 4242 4242" in banner
    assert "worker: DEMO processors" in banner
    assert "Traceback" not in banner


def test_checkout_page_in_chromium_declines_authenticates_and_pays(product: Product) -> None:
    with product.client() as http:
        user = signed_up(http)
        url = checkout_url(http, user, "/api/billing/purchase-credits", {"packId": "credits_50"})
        with chromium() as page:
            page.open(url)
            assert page.text("#product") == "StudioX 50 credits"
            assert page.text("#price") == "$20.00"

            page.click("#decline")
            assert "declined" in wait_text(page, "#message")
            assert credits(http, user)["purchasedCredits"] == 0

            page.click("#authenticate")
            assert "confirm $20.00" in wait_text(page, "#challenge")
            page.click("#authenticate_ok")
            assert page.wait_for("document.querySelector('#result')?.dataset.status") == "paid"
        # Only the signed webhook moves credits.
        assert wait_credits(http, user, "purchasedCredits", 50)["currentCredits"] == 60
        history = http.get("/api/billing/history", headers=user).json()["payments"]
        assert [(p["status"], p["credits"], p["amount"]) for p in history] == [
            ("succeeded", 50, 2000)
        ]


def wait_text(page: Page, selector: str) -> str:
    return str(page.wait_for(f"document.querySelector('{selector}')?.innerText"))


def test_dev_pay_buys_credits_by_amount_and_refuses_a_declined_card(product: Product) -> None:
    with product.client() as http:
        user = signed_up(http)
        url = checkout_url(http, user, "/api/billing/purchase-credits", {"credits": 100})
        declined = product.studiox("dev", "pay", url, "--decline")
        assert declined.returncode == 0, declined.stderr
        assert declined.stdout.startswith("declined: Your card was declined")
        assert credits(http, user)["purchasedCredits"] == 0
        session_id = url.rsplit("/", 1)[1]
        paid = product.studiox("dev", "pay", session_id)  # a bare id works too
        assert paid.returncode == 0, paid.stderr
        assert paid.stdout.startswith("paid: Payment succeeded")
        assert "webhooks delivered" in paid.stdout
        # `dev pay` returns once the webhooks were answered: no waiting needed.
        assert credits(http, user)["purchasedCredits"] == 100
        again = product.studiox("dev", "pay", url)
        assert again.returncode == 1
        assert "is complete, not open" in again.stderr


def test_upgrade_renewal_enterprise_and_downgrade_at_period_end(product: Product) -> None:
    with product.client() as http:
        user = signed_up(http)
        user_id = http.get("/api/users/me", headers=user).json()["user"]["id"]
        # The answer piped in, as the README's tour does.
        answer = http.post("/api/billing/upgrade-plan", json={"planName": "pro"}, headers=user)
        piped = product.studiox("dev", "pay", "-", stdin=answer.text)
        assert piped.returncode == 0, piped.stderr
        pro = wait_credits(http, user, "planName", "pro")
        assert pro["allowanceCredits"] == 100
        http.post(
            "/api/tasks/create",
            json={"type": "advanced_editing", "inputData": {"demoSeconds": 0}},
            headers=user,
        ).raise_for_status()

        renewed = product.studiox("dev", "advance-clock", "--user", user_id)
        assert renewed.returncode == 0, renewed.stderr
        assert ": renewed: customer.subscription.updated, invoice.paid" in renewed.stdout
        _later(pro["creditResetAt"], http, user)
        # A fresh allowance for the new period (3 were used in the old one).
        assert credits(http, user)["allowanceCredits"] == 100

        change = http.post(
            "/api/billing/upgrade-plan", json={"planName": "enterprise"}, headers=user
        ).json()
        assert change["status"] == "pending"
        assert wait_credits(http, user, "planName", "enterprise")["isUnlimited"] is True

        down = http.post("/api/billing/upgrade-plan", json={"planName": "free"}, headers=user)
        assert down.json()["status"] == "cancel_at_period_end"
        assert credits(http, user)["planName"] == "enterprise"  # until the period ends
        ended = product.studiox("dev", "advance-clock", "--user", user_id)
        assert "canceled at period end" in ended.stdout
        assert wait_credits(http, user, "planName", "free")["allowanceCredits"] == 10


def _later(reset_at: str, http: httpx.Client, user: dict[str, str]) -> str:
    """The creditResetAt that differs from `reset_at` once the renewal is applied."""
    deadline = time.monotonic() + 10
    while True:
        current = str(credits(http, user)["creditResetAt"])
        if current != reset_at:
            assert current > reset_at
            return current
        assert time.monotonic() < deadline, "the renewal did not move creditResetAt"
        time.sleep(0.1)


def test_a_task_created_on_the_local_stack_is_done_within_15_seconds(product: Product) -> None:
    with product.client() as http:
        user = signed_up(http)
        created = http.post(
            "/api/tasks/create",
            json={"type": "video_generation", "inputData": {"prompt": "a sunset"}},
            headers=user,
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["task"]["id"]
        deadline = time.monotonic() + 15
        while True:
            task = http.get(f"/api/tasks/{task_id}", headers=user).json()["task"]
            if task["status"] == "done":
                break
            assert time.monotonic() < deadline, f"task still {task['status']}"
            time.sleep(0.2)
        assert task["outputData"]["demo"] is True
        ledger = http.get("/api/users/transactions", headers=user).json()["transactions"]
        assert ledger[0]["reference"] == task_id
        assert ledger[0]["amount"] == -5


def test_state_dir_keeps_the_local_stripe(product: Product) -> None:
    state = Path(product.env["STUDIOX_STATE_DIR"]) / "stripe-dev.json"
    assert state.exists()
