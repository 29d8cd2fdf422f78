"""The engine views of the console in real Chromium against a live server with the mock
upstream: workflows (JSON editor with inline server errors, DAG graph, a streamed run,
run history), knowledge bases (create, upload with progress, chunks, search
playground), operations (queue, auto-refresh, cancel, a 409 shown as a message) and
the audit log (server-side filters, errors next to fields, diffs). Every view is
photographed at 1280x800 and at 420 px wide."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.support.live import AUTH
from tests.ui.conftest import NARROW, WIDE, Console, sign_in

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails) saying why
    expect = None

pytestmark = pytest.mark.live
REPLY = "Mock reply to: About owls"
RUN_TITLE = re.compile(r"^Run run_")

FLOW = {
    "id": "ui-flow",
    "name": "UI flow",
    "description": "Introduce a topic, ask the mock about it, and shape the answer.",
    "input_schema": {
        "type": "object",
        "required": ["topic"],
        "properties": {
            "topic": {"type": "string", "minLength": 1, "description": "What to ask about"},
            "count": {"type": "integer", "minimum": 1},
            "tone": {"enum": ["plain", "fancy"]},
            "loud": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "steps": [
        {"name": "intro", "type": "template", "template": "About ${request:topic}"},
        # Slow chunks, so the test sees the step running with part of its text.
        {"name": "ask", "type": "chat_completion", "model_id": "ui-mock",
         "user_message": "${step:intro} [[mock:chunk_delay_ms=250]]"},
        {"name": "shape", "type": "template",
         "template": {"reply": "${step:ask:content}", "tags": "${request:tags}",
                      "tone": "${request:tone:plain}"}},
    ],
    "output": {"answer": "${step:shape}"},
}


def heading(page, name: str | re.Pattern):
    return page.get_by_role("heading", level=1, name=name)


def card(page, step: str):
    return page.locator(f'article.run-step[data-step="{step}"]')


def node(page, step: str):
    return page.locator(f'g.dag-node[data-step="{step}"]')


def selected_text(page):
    return page.evaluate(
        "(() => { const t = document.activeElement;"
        " return t.value.slice(t.selectionStart, t.selectionEnd); })()")


async def test_create_a_workflow_with_inline_errors_then_run_it_streamed(page, console: Console):
    await sign_in(page)
    await page.get_by_role("link", name="Workflows").click()
    await expect(heading(page, "Workflows")).to_be_visible()
    await page.get_by_role("link", name="New workflow").click()
    await expect(heading(page, "New workflow")).to_be_visible()

    # A definition the server refuses: the problem names the step and field, the
    # editor selects that field, and the step is marked in the graph.
    broken = json.loads(json.dumps(FLOW))
    broken["steps"][1]["depends_on"] = ["nowhere"]
    editor = page.get_by_label("Definition (JSON)")
    await editor.fill(json.dumps(broken, indent=2))
    await expect(page.locator("g.dag-node[data-step]")).to_have_count(3)  # the live preview
    await page.get_by_role("button", name="Create workflow").click()
    problems = page.get_by_role("alert", name="Problems")
    await expect(problems).to_contain_text("steps[1].depends_on")
    await expect(problems).to_contain_text("(step “ask”)")
    await expect(problems).to_contain_text("unknown step 'nowhere'")
    await expect(editor).to_be_focused()
    assert (await selected_text(page)).startswith('"depends_on": [')
    await expect(page.locator('g.dag-node.invalid[data-step="ask"]')).to_have_count(1)

    await editor.fill("{ not json")
    await expect(page.get_by_text("Not valid JSON:").first).to_be_visible()
    await editor.fill(json.dumps(FLOW, indent=2))
    await page.get_by_role("button", name="Create workflow").click()
    await expect(heading(page, "UI flow")).to_be_visible()
    assert page.url.endswith("#/workflows/ui-flow")

    # The graph: input, the three steps layered by their references, output.
    graph = page.get_by_role("img", name="Steps of ui-flow")
    await expect(graph.locator("g.dag-node")).to_have_count(5)
    await expect(graph).to_have_attribute("aria-labelledby", re.compile(r"\S+ \S+"))
    description = await graph.locator("desc").text_content()
    assert "ask (chat_completion) after intro" in description
    assert "shape (template) after ask" in description

    # Run: the form comes from input_schema; the server's input errors sit by the field.
    await page.get_by_role("tab", name="Run", exact=True).click()
    await expect(page.get_by_label("topic (required)")).to_be_visible()
    await page.get_by_label("count").fill("0")
    await page.get_by_role("button", name="Run workflow").click()
    topic_field = page.locator(".field.has-error").filter(has=page.get_by_label("topic (required)"))
    await expect(topic_field.locator(".field-error")).to_contain_text(
        "'topic' is a required property")
    count_field = page.locator(".field.has-error").filter(has=page.get_by_label("count"))
    await expect(count_field.locator(".field-error")).to_contain_text("less than the minimum of 1")
    await expect(page.get_by_label("topic (required)")).to_be_focused()
    await page.get_by_label("count").fill("two")
    await page.get_by_role("button", name="Run workflow").click()
    await expect(count_field.locator(".field-error")).to_have_text("Enter a whole number")

    await page.get_by_label("topic (required)").fill("owls")
    await page.get_by_label("count").fill("2")
    await page.get_by_label("tone").select_option("fancy")
    await page.get_by_label("tags").fill("night\nbirds")
    await page.get_by_role("button", name="Run workflow").click()

    # Step events as they happen: the chat step runs with part of its text streamed.
    ask = page.locator('article.run-step[data-step="ask"]')
    await expect(ask).to_have_attribute("data-state", "running")
    await expect(node(page, "ask")).to_have_attribute("data-state", "running")
    await expect(card(page, "intro")).to_have_attribute("data-state", "ok")
    await expect(page.get_by_label("Streamed text of ask")).to_contain_text("Mock")
    await expect(page.get_by_test_id("run-status")).to_have_text("Finished.")
    for step in ("intro", "ask", "shape"):
        await expect(card(page, step)).to_have_attribute("data-state", "ok")
        await expect(node(page, step)).to_have_attribute("data-state", "ok")
    await expect(page.get_by_label("Streamed text of ask")).to_have_text(REPLY)
    await expect(ask).to_contain_text(re.compile(r"[1-9]\d* tokens · \$\d"))  # priced model
    output = page.get_by_test_id("run-output")
    await expect(output).to_contain_text('"reply": "Mock reply to: About owls"')
    await expect(output).to_contain_text('"tone": "fancy"')
    await expect(output).to_contain_text('"night"')
    await page.get_by_text(re.compile(r"^Events \(\d+\)$")).click()
    log = await page.get_by_label("Run events").inner_text()
    assert "run_started" in log and "step_output_delta ask" in log and "run_finished" in log

    # The run in the history, with its input and each step's input (as recorded, its
    # references resolved), output, timing, tokens and cost (ui-mock has pricing).
    await page.get_by_role("link", name="Open this run in the history").click()
    await expect(heading(page, RUN_TITLE)).to_be_visible()
    await expect(page.get_by_label("Run input")).to_contain_text('"topic": "owls"')
    await expect(page.locator("dl.facts").first).to_contain_text(re.compile(r"Cost\s*\$\d"))
    trace = page.get_by_role("table", name="Step trace")
    ask_row = trace.get_by_role("row").filter(has_text="chat_completion")
    await expect(ask_row).to_contain_text("ask")
    await expect(ask_row.locator('td[data-label="Tokens"]')).to_have_text(re.compile(r"^[1-9]\d*$"))
    await expect(ask_row.locator('td[data-label="Time"]')).to_have_text(
        re.compile(r"\d+(\.\d+)? (ms|s)"))
    await expect(ask_row.locator('td[data-label="Cost"]')).to_have_text(re.compile(r"^\$\d"))
    await ask_row.get_by_role("button", name="Details of step ask").click()
    await expect(page.locator('details[data-step="ask"]')).to_have_attribute("open", "")
    ask_input = page.get_by_label("Input of ask")
    await expect(ask_input).to_contain_text('"model": "ui-mock"')
    await expect(ask_input).to_contain_text(  # the intro step's output, resolved
        '"content": "About owls [[mock:chunk_delay_ms=250]]"')
    await expect(page.get_by_label("Input of shape")).to_contain_text(
        f'"${{step:ask:content}}": "{REPLY}"')
    await expect(page.get_by_label("Output of ask")).to_contain_text(f'"content": "{REPLY}"')
    await expect(page.get_by_role("img", name=re.compile("^Steps of run"))).to_be_visible()

    await page.get_by_role("link", name="Runs of ui-flow").click()
    runs = page.get_by_role("table", name="Workflow runs")
    await expect(runs.get_by_role("row")).to_have_count(2)  # the header and the run
    await expect(runs.get_by_text("succeeded")).to_be_visible()

    # Edit: a new version via a merge patch; the list's search finds it.
    await page.get_by_role("tab", name="Definition").click()
    changed = {**FLOW, "description": "Edited in the console."}
    await page.get_by_label("Definition (JSON)").fill(json.dumps(changed, indent=2))
    await page.get_by_role("button", name="Save new version").click()
    await expect(page.get_by_text("ui-flow · version 2 · 3 steps")).to_be_visible()
    await page.goto("/ui/#/workflows")
    await page.get_by_label("Search workflows").fill("shape")
    await expect(page.get_by_role("link", name="ui-flow", exact=True)).to_be_visible()
    with console.admin() as client:
        saved = client.get("/admin/workflows/ui-flow").json()
    assert saved["description"] == "Edited in the console."


async def test_knowledge_base_upload_chunks_and_search(page, console: Console, tmp_path: Path):
    await sign_in(page)
    await page.get_by_role("link", name="Knowledge bases").click()
    await page.get_by_role("button", name="New knowledge base").click()
    dialog = page.get_by_role("dialog", name="New knowledge base")
    await dialog.get_by_label("Id", exact=True).fill("ui-docs")
    await dialog.get_by_label("Display name").fill("UI docs")
    await expect(dialog.get_by_label("Backend", exact=True)).to_have_value("embedded")
    await dialog.get_by_label("Chunk size").fill("10")
    await dialog.get_by_role("button", name="Create knowledge base").click()
    size_field = dialog.locator(".field.has-error")
    await expect(size_field.get_by_label("Chunk size")).to_be_focused()
    await expect(size_field.locator(".field-error")).to_contain_text("greater than or equal to 16")
    await dialog.get_by_label("Chunk size").fill("400")
    await dialog.get_by_label("Chunk overlap").fill("40")
    await dialog.get_by_role("button", name="Create knowledge base").click()
    await expect(heading(page, "UI docs")).to_be_visible()
    assert page.url.endswith("#/knowledge/ui-docs")

    # Upload with the file input (and metadata); the server's slow part shows as processing.
    refunds = tmp_path / "refunds.txt"
    refunds.write_text("Refunds are accepted within 30 days of purchase with the receipt.\n",
                       encoding="utf-8")

    async def slow(route):
        if route.request.method == "POST":
            await asyncio.sleep(1.0)
        await route.continue_()

    await page.route("**/admin/knowledge-bases/ui-docs/documents", slow)
    await page.get_by_text("Metadata for the next upload").click()
    await page.get_by_label("Metadata (JSON object)").fill('{"team": "support"}')
    await page.get_by_label("Files to upload").set_input_files(str(refunds))
    progress = page.get_by_role("progressbar", name="Upload progress")
    await expect(progress).to_have_attribute("aria-valuenow", "100")
    processing = page.get_by_text("Uploaded refunds.txt: parsing, chunking and embedding…")
    await expect(processing).to_be_visible()
    await expect(page.get_by_text("refunds.txt (1 chunks)")).to_be_visible()
    await page.unroute("**/admin/knowledge-bases/ui-docs/documents")

    # Drag and drop a second file (no metadata this time).
    await page.get_by_label("Metadata (JSON object)").fill("")
    transfer = await page.evaluate_handle("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['Shipping takes five business days. Express shipping costs extra.'],
                              'shipping.txt', { type: 'text/plain' }));
        return dt;
    }""")
    await page.get_by_test_id("dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    await expect(page.get_by_text("shipping.txt (1 chunks)")).to_be_visible()

    documents = page.get_by_role("table", name="Documents")
    await expect(documents.get_by_role("row")).to_have_count(3)
    row = documents.get_by_role("row").filter(has_text="refunds.txt")
    await expect(row.get_by_text("ready")).to_be_visible()
    await row.get_by_role("button", name="View chunks of refunds.txt").click()
    chunk_dialog = page.get_by_role("dialog", name=re.compile("^Document refunds"))
    await expect(chunk_dialog.get_by_role("list", name="Chunks")).to_contain_text(
        "Refunds are accepted within 30 days")
    await page.keyboard.press("Escape")
    await expect(chunk_dialog).to_be_hidden()

    # The search playground: scores, metadata filters, errors next to the filter.
    await page.get_by_role("tab", name="Search").click()
    await page.get_by_label("Query").fill("how long do I have to ask for a refund?")
    await page.get_by_role("button", name="Search", exact=True).click()
    hits = page.get_by_test_id("hit")
    await expect(hits).to_have_count(2)
    await expect(hits.first).to_contain_text("Refunds are accepted within 30 days")
    await expect(hits.first).to_contain_text(re.compile(r"score [-\d.]+"))
    await expect(hits.first.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")

    filter_box = page.get_by_label("Metadata filter (JSON)")
    await filter_box.fill('{"field": "team", "operator": "bogus", "value": "support"}')
    await page.get_by_role("button", name="Search", exact=True).click()
    filter_field = page.locator(".field.has-error").filter(has=filter_box)
    await expect(filter_field.locator(".field-error")).to_contain_text("filter.operator")
    await expect(filter_box).to_be_focused()
    await filter_box.fill('{"field": "team", "operator": "eq", "value": "support"}')
    await page.get_by_label("Mode").select_option("true")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("heading", name=re.compile(r"^1 hit"))).to_contain_text("hybrid")
    await expect(hits).to_have_count(1)
    await hits.first.get_by_text("Metadata").click()
    await expect(hits.first).to_contain_text('"team": "support"')


def _async_chat(console: Console, content: str) -> str:
    with console.admin() as client:
        answer = client.post("/v1/chat/completions?async=true", json={
            "model": "ui-mock", "messages": [{"role": "user", "content": content}]})
    assert answer.status_code == 202, answer.text
    return answer.json()["operation_id"]


async def test_operations_refresh_cancel_and_a_conflict_is_a_message(page, console: Console):
    slow = _async_chat(console, "[[mock:delay_ms=20000]] a slow one")
    quick = _async_chat(console, "[[mock:delay_ms=1500]] a quick one")
    await sign_in(page)
    await page.get_by_role("link", name="Operations").click()
    await expect(heading(page, "Operations")).to_be_visible()
    await expect(page.get_by_text("Waiting in the queue")).to_be_visible()

    table = page.get_by_role("table", name="Operations")
    slow_row = table.get_by_role("row").filter(has_text=slow[:11])
    quick_row = table.get_by_role("row").filter(has_text=quick[:11])
    await expect(slow_row.get_by_text(re.compile("^(pending|running)$"))).to_be_visible()
    # Nobody reloads: the view refreshes itself while something runs.
    await expect(quick_row.get_by_text("completed", exact=True)).to_be_visible(timeout=15_000)

    await slow_row.get_by_role("button", name=f"Cancel {slow}").click()
    await page.get_by_role("button", name="Yes, cancel").click()
    await expect(slow_row.get_by_text("cancelled", exact=True)).to_be_visible()
    await expect(slow_row.get_by_role("button", name=f"Cancel {slow}")).to_have_count(0)
    with console.admin() as client:
        assert client.get(f"/v1/operations/{slow}").json()["status"] == "cancelled"

    # The detail panel: a finished operation's result.
    await quick_row.get_by_role("link").click()
    detail = page.get_by_test_id("operation-detail")
    await expect(detail).to_contain_text(quick)
    await expect(detail.locator(".reply")).to_have_text("Mock reply to: a quick one")
    assert f"id={quick}" in page.url
    await detail.get_by_role("button", name="Close").click()
    await expect(detail).to_be_hidden()

    # Cancelled elsewhere while this page still shows it running: the 409 is a message.
    other = _async_chat(console, "[[mock:delay_ms=20000]] another slow one")
    await page.get_by_label("Status").select_option("running")
    assert "status=running" in page.url
    other_row = table.get_by_role("row").filter(has_text=other[:11])
    await expect(other_row.get_by_text("running", exact=True)).to_be_visible()
    await page.get_by_label("Refresh while operations are pending or running").uncheck()
    with console.admin() as client:
        assert client.delete(f"/v1/operations/{other}").status_code == 200
    await other_row.get_by_role("button", name=f"Cancel {other}").click()
    await page.get_by_role("button", name="Yes, cancel").click()
    alert = page.get_by_role("alert").filter(has_text=f"Could not cancel {other}")
    await expect(alert).to_contain_text("cannot become cancelled")
    await expect(other_row).to_be_hidden()  # refreshed: it is no longer running


async def test_audit_log_lists_filters_and_shows_changes(page, console: Console):
    with console.admin() as client:
        created = client.post("/admin/teams", json={"id": "ui-audited", "name": "Before"})
        assert created.status_code == 201, created.text
        assert client.patch("/admin/teams/ui-audited", json={"name": "After"}).status_code == 200
    await sign_in(page)
    await page.get_by_role("link", name="Audit log").click()
    await expect(heading(page, "Audit log")).to_be_visible()
    table = page.get_by_role("table", name="Audit log")
    await expect(table.get_by_role("link", name="ui-audited").first).to_be_visible()

    # A bad filter: the server's 400 sits next to its field.
    await page.get_by_label("Resource id").fill("x" * 200)
    await page.get_by_role("button", name="Apply filters").click()
    bad = page.locator(".field.has-error").filter(has=page.get_by_label("Resource id"))
    await expect(bad.locator(".field-error")).to_be_visible()
    await expect(page.get_by_label("Resource id")).to_be_focused()

    await page.get_by_label("Resource type").select_option("team")
    await page.get_by_label("Resource id").fill("ui-audited")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile(r"#/audit\?.*resource_type=team"))
    await expect(page.get_by_text("2 entries")).to_be_visible()
    rows = table.get_by_role("row")
    await expect(rows).to_have_count(3)
    for cell in await table.locator('td[data-label="Resource type"]').all():
        assert await cell.inner_text() == "team"

    await page.get_by_label("Action").select_option("update")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_text("1 entry", exact=True)).to_be_visible()
    update = rows.filter(has_text="update")
    await expect(update.locator('td[data-label="Changed"]')).to_have_text("name")
    await update.get_by_role("button", name=re.compile("^Changes of entry")).click()
    dialog = page.get_by_role("dialog", name="update team ui-audited")
    await expect(dialog.locator(".diff-line.add")).to_contain_text('"name": "After"')
    await expect(dialog.locator(".diff-line.del")).to_contain_text('"name": "Before"')
    await page.keyboard.press("Escape")

    await page.get_by_role("link", name="Clear").click()
    await expect(page).to_have_url(re.compile(r"#/audit$"))
    await page.get_by_label("Search this page").fill("ui-audited")
    await expect(rows).to_have_count(3)


async def _seed_views(console: Console) -> dict[str, str]:
    """A workflow with a run, a knowledge base with a document and an operation to show."""
    async with httpx.AsyncClient(base_url=console.url, headers=AUTH, timeout=30.0) as client:
        flow = {**FLOW, "id": "ui-shot-flow", "name": "Shot flow"}
        flow["steps"] = [{**s, "user_message": "${step:intro}"} if s["name"] == "ask" else s
                         for s in flow["steps"]]
        created = await client.post("/admin/workflows", json=flow)
        assert created.status_code == 201, created.text
        run = await client.post("/v1/workflows/ui-shot-flow/execute", json={"topic": "owls"})
        assert run.status_code == 200, run.text
        kb = await client.post("/admin/knowledge-bases",
                               json={"id": "ui-shot-kb", "name": "Shot KB"})
        assert kb.status_code == 201, kb.text
        added = await client.post("/admin/knowledge-bases/ui-shot-kb/documents",
                                  json={"text": "Headrace routes requests.", "name": "about.txt"})
        assert added.status_code == 201, added.text
        op = await client.post("/v1/chat/completions?async=true", json={
            "model": "ui-mock", "messages": [{"role": "user", "content": "hello"}]})
        assert op.status_code == 202, op.text
    return {"run": run.json()["run_id"], "operation": op.json()["operation_id"]}


async def test_engine_views_render_wide_and_narrow(page, console: Console, screenshot):
    made = await _seed_views(console)
    views = [  # route, heading, screenshot name
        ("workflows", "Workflows", "workflows"),
        ("workflows?tab=runs", "Workflows", "workflows-runs"),
        ("workflows/_new", "New workflow", "workflow-new"),
        ("workflows/ui-shot-flow", "Shot flow", "workflow-graph"),
        ("workflows/ui-shot-flow?tab=edit", "Shot flow", "workflow-definition"),
        ("workflows/ui-shot-flow?tab=run", "Shot flow", "workflow-run"),
        ("workflows/ui-shot-flow?tab=runs", "Shot flow", "workflow-history"),
        (f"workflows/ui-shot-flow/runs/{made['run']}", RUN_TITLE, "workflow-run-detail"),
        ("knowledge", "Knowledge bases", "knowledge"),
        ("knowledge/ui-shot-kb", "Shot KB", "knowledge-documents"),
        ("knowledge/ui-shot-kb?tab=search", "Shot KB", "knowledge-search"),
        ("knowledge/ui-shot-kb?tab=settings", "Shot KB", "knowledge-settings"),
        ("operations", "Operations", "operations"),
        (f"operations?id={made['operation']}", "Operations", "operation-detail"),
        ("audit", "Audit log", "audit"),
    ]
    await sign_in(page)
    for route, title, name in views:
        await page.set_viewport_size(WIDE)
        await page.goto(f"/ui/#/{route}")
        await expect(heading(page, title)).to_be_visible()
        await expect(page.get_by_role("status").filter(has_text="Loading")).to_have_count(0)
        await screenshot(page, f"engine-{name}-1280")
        await page.set_viewport_size(NARROW)
        await expect(heading(page, title)).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{route} is {width} px wide at 420"
        await screenshot(page, f"engine-{name}-420")
    # The graph turns top to bottom when the window is too narrow for it left to right.
    await page.goto("/ui/#/workflows/ui-shot-flow")
    await expect(page.locator("svg[data-orientation='tb']")).to_be_visible()
    await page.set_viewport_size(WIDE)
    await expect(page.locator("svg[data-orientation='lr']")).to_be_visible()


async def test_engine_helpers_in_the_browser(page, console: Console):
    """lib/jsonloc.js, lib/engine.js and lib/dag.js, which the views build on."""
    await sign_in(page)
    result = await page.evaluate("""async () => {
        const { locate } = await import('/ui/lib/jsonloc.js');
        const { mergePatch, parseProblems } = await import('/ui/lib/engine.js');
        const { workflowGraph } = await import('/ui/lib/dag.js');
        const text = JSON.stringify({ id: 'w', steps: [{ name: 'a', type: 'template' },
            { name: 'b', type: 'chat_completion', depends_on: ['a'] }] }, null, 2);
        const at = (path) => {
            const found = locate(text, path);
            return found && text.slice(found.start, found.end);
        };
        const graph = workflowGraph({ steps: [
            { name: 's', type: 'knowledge_base_search', query: '${request:q}' },
            { name: 'c', type: 'conditional', conditions: [{ field: '${step:s:count}',
                operator: 'eq', value: 0, action: { end_workflow: 'none' } }] },
            { name: 'g', type: 'crag_scoring', query: 'x', strategy: 'threshold' },
            { name: 'x', type: 'template', template: 'a' },
            { name: 'y', type: 'template', template: '${step:g}', depends_on: ['x'] },
        ] });
        const edges = graph.edges.map((e) => `${e.from}>${e.to}:${e.kind}`).sort();
        const layers = Object.fromEntries(graph.nodes.map((n) => [n.id, n.layer]));
        return {
            depends: at('steps[1].depends_on'),
            discriminated: at('steps[1].chat_completion.model_id'),
            line: locate(text, 'steps[1].depends_on').line,
            broken: locate('{ nope', 'id'),
            patch: mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1], f: 'x' },
                              { a: 1, b: { c: 2 }, e: [1, 2], g: true }),
            problems: parseProblems({ message: 'invalid workflow: steps[0].name: bad; output: '
                                     + 'worse; x', param: 'steps[0].name' }),
            plain: parseProblems({ message: 'workflow exists', param: 'id' }),
            edges, layers,
        };
    }""")
    assert result["depends"] == '"depends_on": [\n        "a"\n      ]'
    assert result["discriminated"].startswith('{\n      "name": "b"')  # no model_id: its step
    assert result["line"] == 11
    assert result["broken"] is None
    assert result["patch"] == {"b": {"d": None}, "e": [1, 2], "f": None, "g": True}
    assert result["problems"] == [{"path": "steps[0].name", "message": "bad"},
                                  {"path": "output", "message": "worse; x"}]
    assert result["plain"] == [{"path": "id", "message": "workflow exists"}]
    # c waits for s (a reference, and the conditional's barrier); g reads s's documents
    # (crag default) and waits for c; y waits for x and g; the end goes to the output.
    assert result["edges"] == sorted([
        "__input>s:io", "s>c:dep", "s>g:dep", "c>g:barrier", "c>x:barrier", "x>y:dep",
        "g>y:dep", "y>__output:io", "c>__output:jump"])
    assert result["layers"] == {"__input": 0, "s": 1, "c": 2, "g": 3, "x": 3, "y": 4,
                                "__output": 5}


async def test_a_dropped_run_stream_is_followed_again(page, console: Console):
    """The stream ends before run_finished (a proxy dropped it): the view re-attaches
    to /v1/workflow-runs/<id>/events after the last event it saw."""
    flow = {**FLOW, "id": "ui-reattach", "name": "Re-attach flow"}
    with console.admin() as client:
        assert client.post("/admin/workflows", json=flow).status_code == 201
    followed: list[str] = []

    async def cut_short(route):
        response = await route.fetch()  # the whole run, as the server streamed it
        events = (await response.text()).split("\n\n")
        await route.fulfill(response=response, body="\n\n".join(events[:3]) + "\n\n")

    await page.route("**/v1/workflows/ui-reattach/execute?stream=true", cut_short)
    page.on("request", lambda r: "/events?after=" in r.url and followed.append(r.url))
    await sign_in(page)
    await page.goto("/ui/#/workflows/ui-reattach?tab=run")
    await page.get_by_label("topic (required)").fill("owls")
    await page.get_by_role("button", name="Run workflow").click()
    await expect(page.get_by_test_id("run-status")).to_have_text("Finished.")
    await expect(page.get_by_test_id("run-output")).to_contain_text(REPLY)
    for step in ("intro", "ask", "shape"):
        await expect(card(page, step)).to_have_attribute("data-state", "ok")
    assert len(followed) == 1 and followed[0].endswith("/events?after=3"), followed
    await page.get_by_text(re.compile(r"^Events \(\d+\)$")).click()
    seqs = re.findall(r"#(\d+) ", await page.get_by_label("Run events").inner_text())
    assert [int(s) for s in seqs] == list(range(1, len(seqs) + 1))  # none lost, none twice
