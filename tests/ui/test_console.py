"""The admin console in real Chromium: sign-in, models, prompts, keys, usage, and every
view at 1280x800 and at 420 px wide without console errors."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.live import TEST_ADMIN_KEY
from tests.ui.conftest import NARROW, WIDE, Console, sign_in

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails) saying why
    expect = None

pytestmark = pytest.mark.live


def heading(page, name: str | re.Pattern):
    return page.get_by_role("heading", level=1, name=name)


async def test_sign_in_says_why_a_key_is_refused_and_sign_out_forgets_it(page, console: Console):
    await page.goto("/ui/")
    key_input = page.get_by_label("Admin API key")
    await key_input.fill("pk_test_not_a_key_of_this_server_000000")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("That key was not accepted.")).to_be_visible()

    await key_input.fill(console.non_admin_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("That key is not an admin key.")).to_be_visible()

    await key_input.fill(TEST_ADMIN_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await expect(heading(page, "Dashboard")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('headrace.apiKey')") == TEST_ADMIN_KEY

    await page.reload()  # the key lasts for the tab's session
    await expect(heading(page, "Dashboard")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Admin API key")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('headrace.apiKey')") is None


async def test_create_a_model_with_errors_next_to_fields_then_test_call_it(
    page, console: Console,
):
    await sign_in(page)
    await page.get_by_role("link", name="Models").click()
    await expect(heading(page, "Models")).to_be_visible()
    await page.get_by_role("button", name="New model").click()
    dialog = page.get_by_role("dialog", name="New model")
    await dialog.get_by_label("Id", exact=True).fill("not valid!")
    await dialog.get_by_label("Provider").select_option("openai_compatible")
    await dialog.get_by_label("Upstream model", exact=True).fill("mock-model")
    await dialog.get_by_label("Base URL").fill(f"{console.mock_url}/v1")
    await dialog.get_by_role("button", name="Create model").click()

    # The server's 400 names `id`: its message sits under the Id field, which has focus.
    id_field = dialog.locator(".field.has-error")
    await expect(id_field.get_by_label("Id", exact=True)).to_be_focused()
    await expect(id_field.locator(".field-error")).to_contain_text("id")

    await dialog.get_by_label("Id", exact=True).fill("ui-created")
    await dialog.get_by_role("button", name="Create model").click()
    await expect(heading(page, "ui-created")).to_be_visible()
    assert page.url.endswith("#/models/ui-created")
    await expect(page.get_by_role("cell", name="closed")).to_be_visible()  # its circuit

    await page.get_by_role("button", name="Test call to ui-created").click()
    test_dialog = page.get_by_role("dialog", name="Test call: ui-created")
    reply = test_dialog.get_by_text("Mock reply to: Say hello in five words.")
    await expect(reply).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(test_dialog).to_be_hidden()

    with console.admin() as client:
        created = client.get("/admin/models/ui-created").json()
    assert created["base_url"].startswith(console.mock_url)


async def test_create_a_prompt_and_preview_it_live(page, console: Console):
    await sign_in(page)
    await page.goto("/ui/#/prompts")
    await page.get_by_role("link", name="New prompt").click()
    await expect(heading(page, "New prompt")).to_be_visible()
    await page.get_by_label("Id", exact=True).fill("ui-welcome")
    await page.get_by_label("Content").fill("Hello ${var:name}, welcome to ${var:place:Headrace}.")

    preview = page.get_by_label("Rendered prompt")
    await expect(page.get_by_text("missing value for variable 'name'")).to_be_visible()
    await expect(page.get_by_label("place")).to_have_attribute("placeholder", "default: Headrace")
    await page.get_by_label("name (required)").fill("Ada")
    await expect(preview).to_have_text("Hello Ada, welcome to Headrace.")
    await expect(page.get_by_text("Rendered in the browser")).to_be_visible()

    await page.get_by_role("button", name="Create prompt").click()
    await expect(heading(page, "ui-welcome")).to_be_visible()
    await page.get_by_label("name (required)").fill("Grace")
    await page.get_by_label("place").fill("the console")
    await expect(preview).to_have_text("Hello Grace, welcome to the console.")
    await expect(page.get_by_text("Rendered by the server (version 1)")).to_be_visible()

    # A second version, then its diff in the history.
    await page.get_by_label("Content").fill("Hi ${var:name}, welcome to ${var:place:Headrace}.")
    await page.get_by_role("button", name="Save new version").click()
    await expect(page.get_by_text("ui-welcome · version 2")).to_be_visible()
    await page.get_by_role("tab", name="History").click()
    diff = page.locator(".diff")
    await expect(diff.locator(".diff-line.del")).to_contain_text("Hello ${var:name}")
    await expect(diff.locator(".diff-line.add")).to_contain_text("Hi ${var:name}")


async def test_a_new_key_shows_its_secret_once(page, console: Console):
    await sign_in(page)
    await page.goto("/ui/#/keys")
    await page.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    await dialog.get_by_label("Name").fill("ui-secret-key")
    await dialog.get_by_label("Team").select_option("ui-team")
    await dialog.get_by_role("button", name="Create key").click()

    secret_box = page.get_by_test_id("new-secret")
    await expect(secret_box).to_have_text(re.compile(r"^pk_live_\S{20,}$"))
    secret = await secret_box.inner_text()
    await page.get_by_role("button", name="Copy key").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    async with httpx.AsyncClient(base_url=console.url, timeout=10.0) as client:
        answer = await client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200  # it is the real key

    await page.get_by_role("button", name="I have stored it").click()
    await expect(dialog).to_be_hidden()
    row = page.get_by_role("row").filter(has_text="ui-secret-key")
    await expect(row).to_be_visible()
    assert secret not in await page.content()

    await row.get_by_role("button", name="Suspend ui-secret-key").click()
    await expect(row.get_by_text("suspended")).to_be_visible()
    await row.get_by_role("button", name="Activate ui-secret-key").click()
    await expect(row.get_by_text("active", exact=True)).to_be_visible()
    await row.get_by_role("button", name="Revoke").click()
    await row.get_by_role("button", name="Revoke", exact=True).click()
    await expect(row.get_by_text("revoked")).to_be_visible()

    await row.get_by_role("link", name="ui-secret-key").click()
    await expect(heading(page, "ui-secret-key")).to_be_visible()
    assert secret not in await page.content()


async def test_usage_groups_by_model_and_exports_csv(page, console: Console):
    await sign_in(page)
    await page.goto("/ui/#/usage")
    await page.get_by_label("Group by").select_option("model")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("cell", name="ui-mock")).to_be_visible()
    assert "group_by=model" in page.url

    async with page.expect_download() as download:
        await page.get_by_role("button", name="Export CSV").click()
    lines = Path(await (await download.value).path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("model,requests,errors,")
    assert any(line.startswith("ui-mock,") for line in lines)
    assert lines[-1].startswith("total,")


async def test_the_dashboard_charts_usage_and_reports_circuits(page, console: Console):
    await sign_in(page)
    await expect(heading(page, "Dashboard")).to_be_visible()
    await expect(page.locator(".chart canvas")).to_have_count(4)
    circuits = page.get_by_text(re.compile(r"All \d+ circuit breakers are closed"))
    await expect(circuits).to_be_visible()
    top_models = page.get_by_role("table", name="Top models")
    await expect(top_models.get_by_role("link", name="ui-mock")).to_be_visible()
    await page.get_by_role("tab", name="Last 7 days").click()
    await expect(page).to_have_url(re.compile(r"#/dashboard\?range=7d$"))
    await expect(page.locator(".chart canvas")).to_have_count(4)


async def test_modal_is_keyboard_usable(page, console: Console):
    await sign_in(page)
    await page.goto("/ui/#/teams")
    opener = page.get_by_role("button", name="New team")
    await opener.click()
    dialog = page.get_by_role("dialog", name="New team")
    await expect(dialog.get_by_label("Id", exact=True)).to_be_focused()
    for _ in range(30):  # Tab never leaves the dialog
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.closest('dialog') !== null")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(opener).to_be_focused()


async def test_a_view_missing_from_the_build_says_so(page, console: Console):
    await page.route("**/ui/views/audit.js", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body="throw new Error('left out');"))
    await sign_in(page)
    await page.get_by_role("link", name="Audit log").click()
    missing = page.get_by_text("The audit log view is not available in this build.")
    await expect(missing).to_be_visible()
    await page.get_by_role("link", name="Models").click()  # the rest still works
    await expect(heading(page, "Models")).to_be_visible()


VIEWS = [
    ("dashboard", "Dashboard"),
    ("models", "Models"),
    ("models/ui-mock", "Mock chat"),
    ("chains", "Chains"),
    ("chains/ui-chain", "Mock chain"),
    ("prompts", "Prompts"),
    ("prompts/ui-prompt", "ui-prompt"),
    ("prompts/_new", "New prompt"),
    ("keys", "API keys"),
    ("teams", "Teams"),
    ("teams/ui-team", "UI team"),
    ("budgets", "Budgets"),
    ("budgets/ui-budget", "ui-budget"),
    ("usage", "Usage"),
]


async def test_every_view_renders_wide_and_narrow(page, console: Console, screenshot):
    await sign_in(page)
    for route, title in VIEWS:
        await page.set_viewport_size(WIDE)
        await page.goto(f"/ui/#/{route}")
        await expect(heading(page, title)).to_be_visible()
        await expect(page.get_by_role("status").filter(has_text="Loading")).to_have_count(0)
        name = route.replace("/", "-")
        await screenshot(page, f"{name}-1280")
        await page.set_viewport_size(NARROW)
        await expect(heading(page, title)).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{route} is {width} px wide at 420"
        await screenshot(page, f"{name}-420")


async def test_the_narrow_menu_opens_and_navigates(page, console: Console):
    await sign_in(page)
    await page.set_viewport_size(NARROW)
    menu = page.get_by_role("button", name="Menu")
    await expect(page.get_by_role("link", name="Budgets")).to_be_hidden()
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await page.get_by_role("link", name="Budgets").click()
    await expect(heading(page, "Budgets")).to_be_visible()
    await expect(page.get_by_role("link", name="Budgets")).to_be_hidden()


async def test_api_helpers_stream_sse_upload_with_progress_and_raise_api_errors(
    page, console: Console,
):
    """lib/api.js, which the views use: apiStream, upload and ApiError, in the browser."""
    with console.admin() as client:
        assert client.post("/admin/knowledge-bases", json={"id": "ui-kb"}).status_code == 201
    await sign_in(page)
    result = await page.evaluate("""async () => {
        const { api, apiStream, upload, ApiError } = await import('/ui/lib/api.js');
        const pieces = [];
        const end = await apiStream('/v1/chat/completions', {
            model: 'ui-mock', stream: true, messages: [{ role: 'user', content: 'stream please' }],
        }, (data) => pieces.push(data.choices?.[0]?.delta?.content ?? ''));
        const form = new FormData();
        const text = new Blob(['Refunds are accepted within 30 days.'], { type: 'text/plain' });
        form.append('file', text, 'refund.txt');
        const progress = [];
        const uploaded = await upload('/admin/knowledge-bases/ui-kb/documents', form,
                                      (fraction) => progress.push(fraction));
        let missing = null;
        try {
            await api('GET', '/admin/models/no-such-model');
        } catch (error) {
            missing = { apiError: error instanceof ApiError, status: error.status,
                        type: error.type, message: error.message };
        }
        return { text: pieces.join(''), done: end.done, documents: uploaded.data.length,
                 lastProgress: progress.at(-1), missing };
    }""")
    assert result["text"] == "Mock reply to: stream please"
    assert result["done"] is True
    assert result["documents"] == 1 and result["lastProgress"] == 1
    assert result["missing"]["apiError"] and result["missing"]["status"] == 404
    assert result["missing"]["type"] == "not_found_error"
