"""Regressions found by using the console day to day: going from one resource straight
to another of the same kind, diffs, the narrow menu and focus with the keyboard, what
a list says when the server cannot be reached, long ids and the chain step editor on
narrow screens, and a model's prices saved unchanged."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest

from tests.ui.conftest import NARROW, WIDE, Console, sign_in

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails) saying why
    expect = None

pytestmark = pytest.mark.live
LONG_ID = "averyverylongteamidentifier" + "x" * 23  # 50 characters (the most) and no hyphen


def heading(page, name: str | re.Pattern):
    return page.get_by_role("heading", level=1, name=name)


@pytest.fixture(scope="module")
def pairs(console: Console) -> dict[str, str]:
    """Two resources of each kind, both at version 1, that differ in every field shown."""
    made: dict[str, str] = {}
    with console.admin() as client:
        def post(path: str, body: dict) -> dict:
            response = client.post(path, json=body)
            assert response.status_code == 201, response.text
            return response.json()

        for suffix, number in (("a", 1), ("b", 2)):
            post("/admin/prompts", {"id": f"pair-prompt-{suffix}", "name": f"Pair prompt {suffix}",
                                    "content": f"Prompt {suffix} says ${{var:what:{suffix}}}."})
            post("/admin/models", {
                "id": f"pair-model-{suffix}", "name": f"Pair model {suffix}",
                "provider": "openai_compatible", "model": f"upstream-{suffix}",
                "base_url": f"{console.mock_url}/v1"})
            post("/admin/chains", {"id": f"pair-chain-{suffix}", "name": f"Pair chain {suffix}",
                                   "steps": [{"model": f"pair-model-{suffix}"}]})
            post("/admin/teams", {"id": f"pair-team-{suffix}", "name": f"Pair team {suffix}"})
            post("/admin/budgets", {"id": f"pair-budget-{suffix}", "name": f"Pair budget {suffix}",
                                    "scope": "team", "scope_id": f"pair-team-{suffix}",
                                    "amount_usd": 10 * number, "period": "monthly"})
            post("/admin/knowledge-bases", {"id": f"pair-kb-{suffix}", "name": f"Pair KB {suffix}"})
            made[f"key-{suffix}"] = post("/admin/api-keys", {"name": f"Pair key {suffix}"})["id"]
    return made


# route of A, route of B, the tab holding the form (or None), the field, B's title and value
DETAILS = [
    ("prompts/pair-prompt-a", "prompts/pair-prompt-b", None, "Content", "Pair prompt b",
     "Prompt b says ${var:what:b}."),
    ("models/pair-model-a", "models/pair-model-b", "Settings", "Upstream model", "Pair model b",
     "upstream-b"),
    ("chains/pair-chain-a", "chains/pair-chain-b", "Settings", "Display name", "Pair chain b",
     "Pair chain b"),
    ("teams/pair-team-a", "teams/pair-team-b", None, "Display name", "Pair team b", "Pair team b"),
    ("budgets/pair-budget-a", "budgets/pair-budget-b", None, "Amount (USD)", "Pair budget b",
     "20"),
    ("knowledge/pair-kb-a?tab=settings", "knowledge/pair-kb-b?tab=settings", None,
     "Display name", "Pair KB b", "Pair KB b"),
    ("keys/{key-a}", "keys/{key-b}", None, "Name", "Pair key b", "Pair key b"),
]


@pytest.mark.parametrize(("route_a", "route_b", "tab", "label", "title_b", "value_b"), DETAILS,
                         ids=[d[0].split("/")[0] for d in DETAILS])
async def test_going_from_one_resource_to_another_shows_the_new_ones_form(
    page, pairs, route_a, route_b, tab, label, title_b, value_b,
):
    """#/teams/a -> #/teams/b: both at version 1, the form used to stay team a's (and
    saving it would have written a's settings over b's)."""
    route_a, route_b = route_a.format(**pairs), route_b.format(**pairs)
    await sign_in(page)
    await page.goto(f"/ui/#/{route_a}")
    if tab:
        await page.get_by_role("tab", name=tab).click()
    field = page.get_by_label(label, exact=True)
    await expect(field).not_to_have_value(value_b)
    await expect(page.get_by_role("status").filter(has_text="Loading")).to_have_count(0)
    title_a = await page.locator("h1").inner_text()

    # Every heading shown once the console has seen the new hash: never a's again.
    await page.evaluate("""(hash) => {
        window.__titles = [];
        let armed = false;
        window.addEventListener('hashchange', () => { armed = true; }, { once: true });
        const main = document.getElementById('main');
        new MutationObserver(() => {
            const h1 = main.querySelector('h1');
            if (armed) window.__titles.push(h1 ? h1.textContent : null);
        }).observe(main, { childList: true, subtree: true, characterData: true });
        location.hash = hash;
    }""", f"#/{route_b}")
    await expect(heading(page, title_b)).to_be_visible()
    if tab:
        await page.get_by_role("tab", name=tab).click()
    await expect(field).to_have_value(value_b)
    titles = await page.evaluate("window.__titles")
    assert title_a not in titles, titles


async def test_diffs_show_removed_lines_before_added_ones(page, console: Console):
    await sign_in(page)
    result = await page.evaluate("""async () => {
        const { diffLines, Diff } = await import('/ui/lib/diff.js');
        const { html, render } = await import('/ui/vendor/preact-htm.js');
        const ops = (a, b) => diffLines(a, b).map((l) => l.op + l.line);
        const box = document.createElement('div');
        render(html`<${Diff} before=${'same\\nold'} after=${'same\\nnew'} />`, box);
        return {
            one: ops('a\\nb\\nc', 'a\\nB\\nc'),
            two: ops('x\\n1\\n2\\ny', 'x\\n3\\n4\\ny'),
            grown: ops('a', 'a\\nb'),
            shrunk: ops('a\\nb', 'b'),
            rendered: [...box.querySelectorAll('.diff-line')].map((d) => d.className),
        };
    }""")
    assert result["one"] == [" a", "-b", "+B", " c"]
    assert result["two"] == [" x", "-1", "-2", "+3", "+4", " y"]
    assert result["grown"] == [" a", "+b"]
    assert result["shrunk"] == ["-a", " b"]
    assert result["rendered"] == ["diff-line ", "diff-line del", "diff-line add"]


async def test_the_narrow_menu_works_with_the_keyboard(page, console: Console):
    await sign_in(page)
    await page.set_viewport_size(NARROW)
    await expect(heading(page, "Dashboard")).to_be_visible()
    menu = page.get_by_role("button", name="Menu")
    budgets = page.get_by_role("link", name="Budgets")

    await menu.focus()
    await page.keyboard.press("Enter")
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await budgets.focus()
    await page.keyboard.press("Escape")  # closes it, and the focus goes back to the button
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await expect(menu).to_be_focused()

    await page.keyboard.press("Space")
    await expect(budgets).to_be_visible()
    outline = await menu.evaluate("(e) => getComputedStyle(e).outlineStyle")
    assert outline != "none"  # focus is visible
    for _ in range(20):
        if await budgets.evaluate("(e) => e === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(heading(page, "Budgets")).to_be_focused()
    await expect(menu).to_have_attribute("aria-expanded", "false")

    # Any navigation closes it: here the browser's Back button.
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await page.go_back()
    await expect(heading(page, "Dashboard")).to_be_visible()
    await expect(menu).to_have_attribute("aria-expanded", "false")


async def test_the_menu_button_keeps_the_focus_while_a_view_loads(page, console: Console):
    """The page's heading takes the focus after a sidebar link, not from the Menu button."""
    async def slowly(route):
        await asyncio.sleep(1.5)
        await route.continue_()

    await page.route("**/ui/views/dashboard.js", slowly)
    await page.set_viewport_size(NARROW)
    await sign_in(page)
    menu = page.get_by_role("button", name="Menu")
    await menu.focus()
    await expect(heading(page, "Dashboard")).to_be_visible()
    await expect(menu).to_be_focused()


async def test_saving_a_form_keeps_the_focus_on_its_button(page, pairs):
    await sign_in(page)
    await page.goto("/ui/#/teams/pair-team-b")
    await page.get_by_label("Description").fill("Saved with the keyboard")
    save = page.get_by_role("button", name="Save changes")
    await save.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text(re.compile(r"^pair-team-b · version [2-9]"))).to_be_visible()
    await expect(page.get_by_label("Description")).to_have_value("Saved with the keyboard")
    await expect(save).to_be_focused()


@pytest.fixture
async def offline_page(browser, console: Console) -> AsyncIterator[tuple[object, list[str]]]:
    """A page like `page`, for a server that stops answering some requests: the
    browser's "Failed to load resource" lines for those are expected (the test lists
    them in `offline`); any other console error, and any page error, fails the test."""
    context = await browser.new_context(viewport=WIDE, base_url=console.url)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    offline: list[str] = []
    problems: list[str] = []

    def on_console(message) -> None:
        url = (message.location or {}).get("url", "")
        expected = message.text.startswith("Failed to load resource") and any(
            part in url for part in offline)
        if message.type == "error" and not expected:
            problems.append(f"console error: {message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page, offline
    await context.close()
    assert not problems, "\n".join(problems)


async def test_a_list_says_the_server_cannot_be_reached_not_that_it_is_empty(offline_page):
    page, offline = offline_page
    await sign_in(page)
    offline.append("/admin/models")
    await page.route("**/admin/models?*", lambda route: route.abort("connectionrefused"))
    await page.goto("/ui/#/models")
    await expect(page.get_by_role("alert")).to_contain_text("Could not reach the server")
    await expect(page.get_by_text("No models yet")).to_have_count(0)
    await expect(page.get_by_role("table", name="Models")).to_have_count(0)

    await page.unroute("**/admin/models?*")
    await page.get_by_role("button", name="Try again").click()
    await expect(page.get_by_role("table", name="Models").get_by_role(
        "link", name="ui-mock", exact=True)).to_be_visible()


async def test_a_view_that_could_not_be_fetched_can_be_tried_again(offline_page):
    page, offline = offline_page
    await sign_in(page)
    offline.append("/ui/views/keys.js")
    await page.route("**/ui/views/keys.js", lambda route: route.abort("connectionrefused"))
    await page.get_by_role("link", name="API keys").click()
    await expect(page.get_by_text("Could not reach the server to load the API keys view.")
                 ).to_be_visible()
    await expect(page.get_by_text("not available in this build")).to_have_count(0)

    await page.unroute("**/ui/views/keys.js")
    await page.get_by_role("button", name="Try again").click()
    await expect(page.get_by_role("table", name="API keys")).to_be_visible()


async def test_without_models_the_dashboard_and_list_say_so(page, console: Console):
    empty = json.dumps({"object": "list", "data": [], "has_more": False})
    await page.route("**/admin/models?*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=empty))

    async def slow_usage(route):
        await asyncio.sleep(2)
        await route.continue_()

    await page.route("**/admin/usage?group_by=model*", slow_usage)
    await sign_in(page)
    top = page.locator("div").filter(has=page.get_by_role("heading", name="Top models")).last
    await expect(top.get_by_role("status")).to_have_text("Loading…")  # not "no traffic" yet
    await expect(top.get_by_text("No traffic in this period.")).to_have_count(0)
    await expect(page.get_by_text("No circuit breakers yet")).to_be_visible()
    await expect(page.get_by_text("All 0 circuit breakers")).to_have_count(0)
    await expect(top.get_by_role("table", name="Top models")).to_be_visible()

    await page.goto("/ui/#/models")
    await expect(page.get_by_role("cell", name=re.compile("No models yet"))
                 .locator("code")).to_have_text("headrace seed")


async def test_long_ids_wrap_on_a_narrow_screen(page, console: Console):
    with console.admin() as client:
        team = client.post("/admin/teams", json={"id": LONG_ID})
        assert team.status_code == 201, team.text
        key = client.post("/admin/api-keys", json={"name": LONG_ID, "team_id": LONG_ID})
        assert key.status_code == 201, key.text
    await sign_in(page)
    await page.set_viewport_size(NARROW)
    for route in ("teams", f"teams/{LONG_ID}", "keys"):
        await page.goto(f"/ui/#/{route}")
        await expect(page.get_by_role("link", name=LONG_ID).first).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{route} is {width} px wide at 420"


@pytest.mark.parametrize("width", [NARROW["width"], 900, WIDE["width"]])
async def test_the_chain_step_editor_fits_the_window(page, console: Console, width):
    await sign_in(page)
    await page.set_viewport_size({"width": width, "height": 800})
    await page.goto("/ui/#/chains/ui-chain")
    await page.get_by_role("tab", name="Settings").click()
    await page.get_by_role("button", name="Add step").click()
    steps = page.get_by_role("group", name="Steps, tried in order")
    await expect(steps.locator(".step-row")).to_have_count(2)
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    box = await steps.bounding_box()
    for row in await steps.locator(".step-row").all():
        for control in await row.locator("input, select, button").all():
            part = await control.bounding_box()
            assert part["x"] + part["width"] <= box["x"] + box["width"] + 0.5, (
                f"{await control.get_attribute('aria-label') or 'a control'} sticks out at {width}")
    # No two controls of a step overlap.
    rects = [await c.bounding_box() for c in await steps.locator(".step-row").first.locator(
        "input, select, button").all()]

    def apart(a: dict, b: dict) -> bool:
        return (a["x"] + a["width"] <= b["x"] + 0.5 or b["x"] + b["width"] <= a["x"] + 0.5
                or a["y"] + a["height"] <= b["y"] + 0.5 or b["y"] + b["height"] <= a["y"] + 0.5)

    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert apart(a, b), f"controls overlap at {width}: {a} {b}"


async def test_a_model_saved_unchanged_keeps_its_prices(page, console: Console):
    with console.admin() as client:
        created = client.post("/admin/models", json={
            "id": "priced-model", "provider": "openai_compatible", "model": "mock-model",
            "base_url": f"{console.mock_url}/v1",
            "pricing": {"input_cost_per_token": 8e-7, "output_cost_per_token": 3e-7}})
        assert created.status_code == 201, created.text
    await sign_in(page)
    await page.goto("/ui/#/models/priced-model")
    await page.get_by_role("tab", name="Settings").click()
    await expect(page.get_by_label("Input price (USD per 1M tokens)")).to_have_value("0.8")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text(re.compile(r"· version 2$"))).to_be_visible()
    with console.admin() as client:
        pricing = client.get("/admin/models/priced-model").json()["pricing"]
    assert pricing["input_cost_per_token"] == 8e-7
    assert pricing["output_cost_per_token"] == 3e-7
