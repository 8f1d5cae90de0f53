"""The dashboard in a real browser: Playwright driving Debian's chromium, headless,
against a real server whose local sites pose as two providers with GPUs.

A viewer logs in with a token, a job submitted from the API appears and finishes, its
story and logs show, and another tenant's job never appears (a MutationObserver watches
every change the page ever makes). Screenshots are kept under the artefacts folder
(``$INTERCLOUD_TEST_ARTEFACTS``, else the session's tmp folder; its path is printed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import YAML, Server, running_server

CHROMIUM = os.environ.get("INTERCLOUD_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"no chromium at {CHROMIUM} (.ci/run installs it)"
)
SITES = (
    "aws/us-east-1/us-east-1a,cpus=8,gpus=H100:8,price=24;"
    "gcp/us-central1/us-central1-a,cpus=8,gpus=A100:4,price=9"
)
#: Records whether the page ever showed the watched text, across every htmx swap.
WATCH = """
window.__seen = [];
new MutationObserver(() => {
  const text = document.body ? document.body.innerText : "";
  for (const word of ["beta-secret"]) if (text.includes(word)) window.__seen.push(word);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def _gpu_spec(name: str, gpus: str, run: str) -> str:
    return f"kind: training\nname: {name}\nresources: {{accelerators: {gpus}}}\nrun: {run}\n"


CONFIG = "providers:\n  local: {}\ncontracts: [contracts.yaml]\n"
CONTRACTS = """contracts:
  - name: gcp-lab
    provider: gcp
    term: {start: 2026-01-01, end: 2027-01-01}
    commitment: {total_usd: 1200}
"""


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui")
    (root / "config.yaml").write_text(CONFIG)
    (root / "contracts.yaml").write_text(CONTRACTS)
    env = {"INTERCLOUD_LOCAL_SITES": SITES, "INTERCLOUD_CONFIG": str(root / "config.yaml")}
    with running_server(root / "home", **env) as srv:
        srv.tenant("alpha", quotas={"H100": 8}, monthly_budget_usd=500)
        srv.tenant("beta")
        yield srv


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    where = os.environ.get("INTERCLOUD_TEST_ARTEFACTS")
    path = Path(where) if where else tmp_path_factory.getbasetemp() / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\ndashboard screenshots: {path}", flush=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def _submit(server: Server, token: str, text: str) -> int:
    r = server.call(token, "POST", "/v1/workloads", content=text, headers=YAML)
    assert r.status_code == 201, r.text
    job_id: int = r.json()["id"]
    return job_id


def test_a_viewer_sees_its_job_appear_and_finish_and_never_another_tenants(
    gpu_server: Server, browser: object, artefacts: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    srv = gpu_server
    _submit(srv, srv.token("beta", "member"), _gpu_spec("beta-secret", "A100:4", "sleep 4"))
    viewer = srv.token("alpha", "viewer")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.add_init_script(WATCH)
    page.goto(f"{srv.url}/ui")
    expect(page).to_have_url(f"{srv.url}/ui/login")
    page.fill("#token", "ic_wrong")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("login-error")).to_contain_text("unknown token")
    page.fill("#token", viewer)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("who")).to_have_text("alpha · viewer")

    job = _submit(
        srv,
        srv.token("alpha", "member"),
        _gpu_spec("alpha-train", "H100:8", "'echo step 1; sleep 3; echo done-training'"),
    )
    row = page.locator(f'#jobs tr[data-job="{job}"]')
    expect(row).to_be_visible(timeout=20_000)  # the panel polls every 2 s
    expect(row.get_by_test_id("state")).to_have_text("SUCCEEDED", timeout=45_000)
    page.reload()  # the charts redraw every 5 s; take them now
    page.screenshot(path=artefacts / "dashboard-viewer.png", full_page=True)

    page.click(f'#jobs tr[data-job="{job}"] a')
    expect(page.get_by_test_id("job-state")).to_have_text("SUCCEEDED")
    expect(page.get_by_test_id("logs")).to_contain_text("done-training")
    expect(page.get_by_test_id("events")).to_contain_text("submitted")
    page.screenshot(path=artefacts / "dashboard-job.png", full_page=True)

    assert page.evaluate("window.__seen") == []  # beta's job was never on any page shown
    page.goto(f"{srv.url}/ui")
    assert page.evaluate("window.__seen") == []
    assert "beta" not in page.locator("#tenants").inner_text()
    page.context.close()


def test_an_admin_sees_every_tenant_and_the_fleet_over_time(
    gpu_server: Server, browser: object, artefacts: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    srv = gpu_server
    member = srv.token("alpha", "member")
    running = _submit(srv, member, _gpu_spec("alpha-eval", "H100:8", "sleep 20"))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{srv.url}/ui/login")
    page.fill("#token", srv.admin)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("who")).to_contain_text("admin")
    expect(page.locator(f'#queue tr[data-job="{running}"]')).to_be_visible(timeout=20_000)
    expect(page.locator('#jobs tr[data-name="beta-secret"]')).to_be_visible()
    expect(page.locator('#tenants [data-tenant="beta"]')).to_be_visible()
    expect(page.locator("#fleet svg.chart").first).to_be_visible()
    expect(page.get_by_test_id("by-provider")).to_contain_text("aws")
    expect(page.locator('#contracts [data-contract="gcp-lab"] svg.chart')).to_be_visible()
    page.goto(f"{srv.url}/ui?by=gpu&window=5m")
    expect(page.locator("#fleet svg.chart").first).to_contain_text("H100")
    page.screenshot(path=artefacts / "dashboard-admin.png", full_page=True)
    srv.call(member, "POST", f"/v1/workloads/{running}/cancel")
    context.close()
