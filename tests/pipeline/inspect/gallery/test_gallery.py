"""The gallery as a person uses it: built from a real fused store, opened from file:// in headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.imagenet_classes import imagenet_synsets, readable_name
from core.store import (EXPLAIN_STAGE, INDEX_PATH, INDEX_STATUS, INDEX_TARGET, STATUS_OK, mark_done, open_store,
                        write_layout)
from core.target_probability import target_probability
from pipeline.fuse import stage as fuse
from pipeline.inspect.gallery import build_gallery
from pipeline.inspect.gallery.views import PAGE_SIZE
from benchmarks.synthetic_store import make_synthetic_store

FUSE = {"fuse": {"combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2, "num_workers": 1}}


def store_with_photos(tmp_path: Path, n: int, shard: int, explained: bool = True, bad=(3,)) -> Path:
    """A synthetic store whose index paths are real JPEG files: each photo a bright disc where the label's object is."""
    store = tmp_path / "run" / "pssl.zarr"
    masks = make_synthetic_store(store, n, map_size=16, shard=shard, bad=bad, explained=explained)
    group = open_store(store)
    photos = tmp_path / "photos"
    for i, path in enumerate(group[INDEX_PATH][:]):
        file = photos / str(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        disc = masks[i].astype(np.int32)
        rgb = np.stack([disc * 200 + 30, np.full_like(disc, 90), np.full_like(disc, (40 + 7 * i) % 200)], axis=-1)
        Image.fromarray(rgb.astype(np.uint8)).resize((48 + i % 3 * 16, 40)).save(file, format="JPEG")
    write_layout(group, data_root=str(photos))
    return store


def page_rows(site: Path, view: str, key: str) -> list[list]:
    rows, page = [], 0
    while (site / "data" / "view" / view / key / f"{page}.js").is_file():
        text = (site / "data" / "view" / view / key / f"{page}.js").read_text()
        rows += json.loads(text.split(", ", 1)[1].rsplit(");", 1)[0])
        page += 1
    return rows


def test_a_rerun_builds_only_the_shards_fused_since(tmp_path):
    store = store_with_photos(tmp_path, 20, shard=4, explained=False)
    group = open_store(store)
    for shard in (0, 1):
        for model in ("net_a", "net_b"):
            mark_done(group, EXPLAIN_STAGE, model, shard)
    fuse.run(FUSE, store)
    site = tmp_path / "site"
    first = build_gallery(store, site)
    assert (first["shards_built"], first["shards_kept"], first["images"]) == (2, 0, 7)  # image 3 is bad
    thumb = site / "thumbs" / "0" / "0.jpg"
    before = thumb.stat().st_mtime_ns
    for shard in (2, 3, 4):
        for model in ("net_a", "net_b"):
            mark_done(group, EXPLAIN_STAGE, model, shard)
    fuse.run(FUSE, store)
    second = build_gallery(store, site)
    assert (second["shards_built"], second["shards_kept"], second["images"]) == (3, 2, 19)
    assert thumb.stat().st_mtime_ns == before  # shard 0 was not drawn again
    assert sorted(row[0] for row in page_rows(site, "all", "index")) == [i for i in range(20) if i != 3]
    assert [row[0] for row in page_rows(site, "bad", "index")] == [3]
    weights = [row[5] for row in page_rows(site, "all", "weight")]
    assert weights == sorted(weights)
    meta = json.loads((site / "data" / "meta.js").read_text().split(", ", 1)[1].rsplit(");", 1)[0])
    assert meta["views"]["all"] == 19 and meta["shards"] == {"fused": 5, "total": 5}


def test_no_data_file_grows_beyond_a_page(tmp_path):
    store = store_with_photos(tmp_path, 150, shard=50, bad=())
    group = open_store(store)
    fuse.run(FUSE, store)
    site = tmp_path / "site"
    build_gallery(store, site, low_prob=0.5)
    probability = target_probability(group)
    pages = list((site / "data" / "view").rglob("*.js"))
    assert max(len(json.loads(p.read_text().split(", ", 1)[1].rsplit(");", 1)[0])) for p in pages) == PAGE_SIZE
    assert len(page_rows(site, "all", "weight")) == 150
    low = page_rows(site, "low", "prob")
    assert [row[0] for row in low] == [int(i) for i in np.argsort(probability, kind="stable") if probability[i] < 0.5]
    target = group[INDEX_TARGET][:]
    for class_id in np.unique(target)[:5]:
        assert sorted(row[0] for row in page_rows(site, f"class{class_id}", "weight")) == np.flatnonzero(target == class_id).tolist()


@pytest.fixture(scope="module")
def browser_site(tmp_path_factory, ray_local):
    """A gallery of 70 labelled images in 9 shards (built on Ray, as a large store is), pages of PAGE_SIZE."""
    tmp_path = tmp_path_factory.mktemp("gallery")
    store = store_with_photos(tmp_path, 71, shard=8, bad=(3,))
    fuse.run(FUSE, store)
    site = tmp_path / "site"
    summary = build_gallery(store, site, low_prob=0.3)
    assert summary["shards_built"] == 9
    return store, site


def values(page, key: str = "data-value") -> list[float]:
    return [float(v) for v in page.eval_on_selector_all("#grid a.card", f"cards => cards.map(c => c.getAttribute('{key}'))")]


def test_the_index_page_shows_the_labels_and_sorts_on_click(browser_site):
    from benchmarks.gallery_browser import follow, open_browser, visit

    store, site = browser_site
    group = open_store(store)
    with open_browser() as page:
        visit(page, (site / "index.html").as_uri())
        assert page.locator("#grid a.card").count() == PAGE_SIZE
        assert page.locator("#page-of").inner_text().startswith("page 1 of 2 (70 images)")
        weights = values(page)
        assert weights == sorted(weights)  # mean weight, lowest first, by default
        for img in page.locator("#grid a.card img").all()[:12]:  # the thumbnails in view did load
            assert img.evaluate("i => i.complete && i.naturalWidth > 0")
        follow(page, "button[data-key=fg]")
        shares = values(page)
        assert shares == sorted(shares) and "dir=asc" in page.url
        follow(page, "button[data-key=fg]")  # again: descending
        assert "sort=fg" in page.url and "dir=desc" in page.url
        descending = values(page)
        assert descending == sorted(descending, reverse=True) and descending[0] >= shares[-1]
        follow(page, "#pager a:has-text('next')")  # the second page of the descending order: the 10 smallest
        assert "page=1" in page.url
        assert values(page) == sorted(values(page), reverse=True) and len(values(page)) == 70 - PAGE_SIZE
        assert values(page)[0] <= descending[-1]
        visit(page, (site / "index.html").as_uri() + "?view=all&sort=weight&dir=asc")
        screenshot = site / "screenshot.png"  # beside the test's site, not in the tree
        page.screenshot(path=str(screenshot))
        assert page.errors == []
    assert screenshot.stat().st_size > 20_000


def test_a_class_page_and_an_image_page(browser_site):
    from benchmarks.gallery_browser import follow, open_browser, visit

    store, site = browser_site
    group = open_store(store)
    target, status = group[INDEX_TARGET][:], group[INDEX_STATUS][:]
    with open_browser() as page:
        visit(page, (site / "classes.html").as_uri())
        rows = page.locator("#class-table tr")
        assert rows.count() == len(np.unique(target)) + 1
        name = page.locator("#class-table tr").nth(1).locator("a").inner_text()
        follow(page, "#class-table tr:nth-child(2) a")
        class_id = int(re.search(r"class(\d+)", page.url).group(1))
        assert name == readable_name(imagenet_synsets()[class_id])
        assert page.locator("h1").inner_text() == f"{name} (class {class_id})"
        members = np.flatnonzero((target == class_id) & (status == STATUS_OK))
        assert len(members) > 0  # the lowest mean weight of a class with labels (unlabelled classes come last)
        cards = page.eval_on_selector_all("#grid a.card", "cards => cards.map(c => Number(c.dataset.index))")
        assert sorted(cards) == members.tolist()
        assert f"{int((target == class_id).sum())} images" in page.locator(".class-summary").inner_text()
        follow(page, "#grid a.card")
        index = int(re.search(r"i=(\d+)", page.url).group(1))
        table = page.locator("#index-row").inner_text()
        assert str(group[INDEX_PATH][index]) in table and f"{name} (id {class_id})" in table
        assert page.locator("#models tr").count() == 2 + 2  # header, net_a, net_b, mean
        assert page.locator(".panel").count() == 4 + 4  # 2 models x 2 explainers, then photo, consensus, mask, weight
        kinds = page.eval_on_selector_all(".panel", "ps => ps.map(p => p.dataset.kind)")
        assert kinds[-4:] == ["photo", "consensus", "mask", "weight"]
        visit(page, (site / "index.html").as_uri() + "?view=bad&sort=index")
        assert page.locator("#grid a.card").count() == 1 and "unreadable: synthetic" in page.locator("#grid").inner_text()
        assert page.errors == []


def test_the_command_line_builds_a_site(tmp_path):
    from tests.helpers.cli import run_cli
    import sys

    store = store_with_photos(tmp_path, 8, shard=4)
    fuse.run(FUSE, store)
    shutil.rmtree(tmp_path / "site", ignore_errors=True)
    result = run_cli([sys.executable, "-m", "pipeline", "gallery", str(store), str(tmp_path / "site")])
    assert result.returncode == 0, result.stderr
    assert "gallery: 2 shards built, 0 kept, 7 labelled images" in result.stdout
    assert (tmp_path / "site" / "index.html").is_file()
    missing = run_cli([sys.executable, "-m", "pipeline", "gallery", str(tmp_path / "nothing"), str(tmp_path / "x")])
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no Zarr store" in missing.stderr


def test_a_damaged_label_shard_stops_the_gallery_with_one_line(tmp_path):
    from core.store import MASK
    from tests.helpers.cli import run_cli
    import sys

    store = store_with_photos(tmp_path, 8, shard=4)
    fuse.run(FUSE, store)
    (store / MASK / "c" / "1" / "0" / "0").unlink()
    result = run_cli([sys.executable, "-m", "pipeline", "gallery", str(store), str(tmp_path / "site")])
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert f"gallery: {MASK}: shard 1: file {MASK}/c/1/0/0 is missing" in result.stderr and "generate-labels" in result.stderr
