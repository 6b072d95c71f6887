"""scripts/bench/run_all.py: reading each benchmark's output, and rewriting only its own
section of docs/benchmarks.md. (The benchmarks themselves are not run in CI.)"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from scripts.bench import run_all
from scripts.bench._bulk import _pattern

APPENDS = """    level  writers   stock ev/s    ours ev/s   ratio
 recorder        8          244          709    2.91
recorder: ours@8 / stock@8 = 2.91 (target >= 2.0)
"""
REBUILD = """raw read:           200,000 rows in 2.00 s = 100,000/s
rebuild --verify:   200,000 events in 8.00 s = 25,000/s (25% of the raw read; 0 differences)
rebuild:            200,000 events in 5.00 s = 40,000/s (40% of the raw read; 0 rows replaced)
"""
WEBHOOKS = """throughput, 1 worker(s): 500 deliveries in 1.19 s = 420 deliveries/s
throughput, 2 worker(s): 500 deliveries in 1.60 s = 312 deliveries/s
latency at 100 events/s for 10.0 s (1000 events): p50 168 ms, p99 871 ms, max 990 ms  (target)
"""
CHECKOUT = """validate-key     1872 req/s    0.64 ms CPU/request
checkout          495 req/s    3.09 ms CPU/request
ratio, req/s            26.4%  (target >= 25 %)
ratio, CPU per request  20.6%
per-trial ratio, req/s: median  22.5%  (min 18.6%, max 28.8%)
per-trial ratio, CPU:   median  18.3%  (min 15.6%, max 23.3%)
"""


def test_each_reader_finds_its_figure() -> None:
    (appends,) = run_all._appends(APPENDS)
    assert (appends.ratio, appends.met) == ("2.91", "yes")
    (rebuild,) = run_all._rebuild(REBUILD)
    assert (rebuild.ours, rebuild.ratio, rebuild.met) == ("40,000 ev/s", "0.40", "yes")
    (webhooks,) = run_all._webhooks(WEBHOOKS)
    assert (webhooks.ours, webhooks.met) == ("871 ms", "yes")
    assert "2 worker(s) 312 deliveries/s" in webhooks.note
    (checkout,) = run_all._checkout(CHECKOUT)
    # The paired median, not the ratio of the two medians.
    assert (checkout.ours, checkout.ratio, checkout.met) == ("495 req/s", "0.23", "**no**")


@pytest.mark.parametrize("reader", [run_all._appends, run_all._rebuild, run_all._webhooks])
def test_unrecognisable_output_gives_no_figure(reader: object) -> None:
    assert reader("Traceback (most recent call last):\n") == []  # type: ignore[operator]


def test_json_figures_keep_their_units() -> None:
    figure = {
        "figure": "activation",
        "ours": 95,
        "baseline": 1703,
        "unit": "req/s",
        "baseline_unit": "tx/s",
        "ratio": 0.056,
        "target": ">= 0.40",
        "met": False,
    }
    (row,) = run_all._from_json_figures(orjson.dumps({"figures": [figure]}).decode())
    assert (row.ours, row.baseline, row.ratio, row.met) == (
        "95 req/s",
        "1,703 tx/s",
        "0.06",
        "**no**",
    )


def test_the_generated_section_is_replaced_and_the_prose_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nProse.\n")
    monkeypatch.setattr(run_all, "DOC", doc)
    run_all.write_doc(f"{run_all.BEGIN}\nfirst\n{run_all.END}")
    run_all.write_doc(f"{run_all.BEGIN}\nsecond\n{run_all.END}")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nProse.\n")
    assert "second" in text
    assert "first" not in text
    assert text.count(run_all.BEGIN) == 1


def test_clone_pattern_replaces_every_template_token_and_escapes_json_braces() -> None:
    text = 'id-1\t{"id": "id-1", "m": "m-1"}\t\\\\xabc\tfp-1\n'
    pattern = _pattern(text, ["id-1", "m-1", "abc", "fp-1"])
    assert pattern.format("L", "M", "H", "F") == 'L\t{"id": "L", "m": "M"}\t\\\\xH\tF\n'
