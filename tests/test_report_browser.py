"""The HTML report opened in headless Chromium (Debian's chromium driven by Playwright; recipe in
../shared/reference/browser-test.md): every figure loads, no console errors, captions state theory and
parameters, and the summary page lists every claim with its verdict, and provenance."""

import json
from pathlib import Path

import pytest

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no Chromium installed (CI installs Debian's chromium)")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    pw = playwright.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="module")
def page(browser, tiny_reference):
    workdir, _ = tiny_reference
    yield from open_report(browser, workdir / "reports" / "phaselab.html", workdir)


def open_report(browser, report, workdir):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.resolve().as_uri())
    page.wait_for_selector("#app nav", timeout=30_000)
    yield page, errors, requests, workdir
    page.close()


def decode_figures(page) -> list[str]:
    """Decode every embedded figure of the report (a corrupt one rejects); returns their paths."""
    pngs = [p for p in page.evaluate("Object.keys(results)") if p.endswith(".png")]
    for path in pngs:
        sizes = page.evaluate(
            """async p => { const img = new Image(); img.src = results[p].data_uri; await img.decode();
                 return [img.naturalWidth, img.naturalHeight]; }""", path)
        assert sizes[0] > 100 and sizes[1] > 100, path
    return pngs


def test_every_figure_loads_without_errors(page):
    page, errors, requests, workdir = page
    pngs = decode_figures(page)
    assert sorted(Path(p).name for p in pngs) == ["asymptotic_risk.png", "phase_diagram.png", "risk_curves.png"]
    # open one figure through the app, as a reader would
    page.evaluate("p => app.setView({content: 'img', contentPath: results[p].data_uri})", pngs[0])
    page.wait_for_function("p => [...document.images].some(i => i.src === results[p].data_uri && i.naturalWidth > 0)",
                           arg=pngs[0])
    page.screenshot(path=str(workdir / "report.png"))
    assert not errors, errors
    assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests


def test_captions_state_theory_and_parameters(page):
    page, errors, _, _ = page
    captions = page.evaluate("JSON.stringify(Object.values(results).map(r => r.caption || ''))")
    for text in ("Saad", "Veiga", "κ + δ = 0", "d ∈ [16, 32]", "teacher k = 1", "Δ = 0.01"):
        assert text in captions, text
    assert not errors


def test_summary_page_lists_claims_with_verdicts_and_provenance(page):
    page, errors, _, _ = page
    path = next(p for p in page.evaluate("Object.keys(results)") if p.endswith("summary.html"))
    html = page.evaluate("""async p => { const r = await fetch(results[p].data_uri); return await r.text(); }""",
                         path)
    assert "id='scorecard'" in html and "id='provenance'" in html
    assert "tiny" in html and "sgd_phase_diagram" in html and "git_revision" in html
    assert "Saad–Solla ODE" in html and "class='verdict'" in html
    assert any(f">{verdict}</td>" in html for verdict in ("agrees", "disagrees", "inconclusive"))
    assert not errors


def test_report_opens_on_the_scorecard(browser, tiny_reference):
    """The first screen: a description of the run and the scorecard, verdicts colour-coded, each row's link
    opening its figure."""
    workdir, _ = tiny_reference
    for page, errors, _, _ in open_report(browser, workdir / "reports" / "phaselab.html", workdir):
        check_landing(page, errors, workdir)


def check_landing(page, errors, workdir):
    page.wait_for_selector("#scorecard", timeout=10_000)
    description = page.inner_text("#run-description")
    assert "tiny" in description and "sgd_phase_diagram" in description
    claims = json.loads((workdir / "results" / "tiny" / "claims.json").read_text())
    rows = page.locator("#scorecard tr").count() - 1
    assert rows == len(claims)
    verdicts = page.locator("#scorecard td.verdict")
    colours = {"agrees": "rgb(212, 244, 210)", "disagrees": "rgb(249, 208, 204)", "inconclusive": "rgb(251, 238, 194)"}
    for i, c in enumerate(claims):
        cell = verdicts.nth(i)
        assert cell.inner_text() == c["verdict"]
        assert cell.evaluate("e => getComputedStyle(e).backgroundColor") == colours[c["verdict"]]
        assert cell.is_visible()
    page.screenshot(path=str(workdir / "landing.png"))
    page.locator("#scorecard a.figure-link").first.click()
    figure = (workdir / "results" / "scorecard.csv").read_text().splitlines()[1].rsplit(",", 1)[1]
    assert figure.endswith(".png")
    page.wait_for_function("p => [...document.images].some(i => i.src === results[p].data_uri && i.naturalWidth > 0)",
                           arg=figure, timeout=10_000)
    assert not errors, errors


def test_own_experiment_type_figures_load_in_its_report(browser, example_reference):
    """The example type's report (run from outside the repository): its two figures decode, with its captions."""
    for page, errors, requests, _ in open_report(browser, example_reference / "report.html", example_reference):
        pngs = decode_figures(page)
        assert sorted(Path(p).name for p in pngs) == ["loss_vs_lr.png", "optimal_lr.png"]
        captions = page.evaluate("JSON.stringify(Object.values(results).map(r => r.caption || ''))")
        assert "Yang" in captions
        assert not errors and all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests

