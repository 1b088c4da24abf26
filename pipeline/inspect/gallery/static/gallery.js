// The gallery's pages. Data comes as data/<key>.js files that call PSSL.put(key, value): a page opened
// from a file:// address may load scripts but not fetch() them. Each state of a page is its own URL
// (index.html?view=all&sort=weight&dir=asc&page=0), so links, the back button and bookmarks work.
"use strict";
const PSSL = (() => {
  const loaded = {}, waiting = {};

  function put(key, value) {
    loaded[key] = value;
    (waiting[key] || []).forEach((resolve) => resolve(value));
    delete waiting[key];
  }

  function load(key) {
    if (key in loaded) return Promise.resolve(loaded[key]);
    return new Promise((resolve, reject) => {
      const first = !(key in waiting);
      (waiting[key] = waiting[key] || []).push(resolve);
      if (!first) return;
      const script = document.createElement("script");
      script.src = "data/" + key + ".js";
      script.onerror = () => reject(new Error("data/" + key + ".js is missing: re-run `python -m pipeline gallery`"));
      document.head.appendChild(script);
    });
  }

  const params = new URLSearchParams(location.search);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
    }
    for (const child of children) node.append(child);
    return node;
  };
  const fmt = (value, digits = 3) => (value === null || value === undefined ? "-" : Number(value).toFixed(digits));
  const pct = (value) => (value === null || value === undefined ? "-" : (100 * value).toFixed(1) + "%");
  const FIELDS = ["index", "target", "prob", "fg", "ignore", "weight", "disagreement", "objectness", "low", "path", "error"];
  const asObject = (row) => Object.fromEntries(FIELDS.map((f, i) => [f, row[i]]));
  const shardOf = (meta, index) => Math.floor(index / meta.shard_size);
  const fail = (error) => { document.getElementById("status").append(el("span", {class: "error"}, String(error.message || error))); };

  function header(meta) {
    const top = document.getElementById("top");
    top.append(el("a", {href: "index.html"}, "all labels"), el("a", {href: "index.html?view=low&sort=prob"},
      `target probability < ${meta.low_prob}`), el("a", {href: "index.html?view=bad&sort=index"}, "bad inputs"),
      el("a", {href: "classes.html"}, "classes"),
      el("span", {class: "store"}, `${meta.store} · ${meta.images} images · ${meta.shards.fused}/${meta.shards.total} shards fused · ` +
        `${meta.members.length} members`));
  }

  async function classIndex() {
    const classes = await load("classes");
    return Object.fromEntries(classes.map((c) => [c.id, c]));
  }

  // rows [first, first + count) of a view sorted by key, in either direction, from its ascending pages
  async function viewRows(meta, view, key, dir, first, count, total) {
    const size = meta.page_size;
    const positions = [];
    for (let r = first; r < Math.min(first + count, total); r++) positions.push(dir === "desc" ? total - 1 - r : r);
    const pages = [...new Set(positions.map((p) => Math.floor(p / size)))];
    const loadedPages = Object.fromEntries(await Promise.all(pages.map(async (p) => [p, await load(`view/${view}/${key}/${p}`)])));
    return positions.map((p) => asObject(loadedPages[Math.floor(p / size)][p % size]));
  }

  function card(meta, classes, row, key) {
    const name = classes[row.target] ? classes[row.target].name : `class ${row.target}`;
    const link = el("a", {class: "card" + (row.low ? " low" : ""), href: `image.html?i=${row.index}`,
      title: row.path, "data-index": row.index, "data-value": row[key] === null ? "" : row[key]});
    if (row.error !== undefined) {
      link.append(el("div", {class: "frame"}, el("span", {class: "error"}, row.error)));
    } else {
      link.append(el("div", {class: "frame"}, el("img", {loading: "lazy", alt: row.path,
        src: `thumbs/${shardOf(meta, row.index)}/${row.index}.jpg`})));
    }
    link.append(el("div", {class: "name"}, `${name}`),
      el("div", {class: "numbers"}, `weight ${fmt(row.weight)} · p ${fmt(row.prob)}`),
      el("div", {class: "numbers"}, `fg ${pct(row.fg)} · ignore ${pct(row.ignore)} · disagr. ${fmt(row.disagreement)}` +
        (meta.objectness.length ? ` · obj ${fmt(row.objectness)}` : "")),
      el("div", {class: "path"}, `[${row.index}] ${row.path}`));
    if (row.low) link.append(el("div", {class: "flag"}, `target probability < ${meta.low_prob}`));
    return link;
  }

  function go(changes) {
    const next = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) next.set(k, v);
    location.search = next.toString();
  }

  async function indexPage() {
    try {
      const meta = await load("meta");
      const classes = await classIndex();
      header(meta);
      const view = params.get("view") || "all";
      const keys = view === "bad" ? ["index"] : Object.keys(meta.keys);
      const key = keys.includes(params.get("sort")) ? params.get("sort") : keys[0];
      const dir = params.get("dir") === "desc" ? "desc" : "asc";
      const classId = view.startsWith("class") ? Number(view.slice(5)) : null;
      const total = classId !== null ? (classes[classId] ? classes[classId].labelled : 0) : meta.views[view] || 0;
      const pages = Math.max(1, Math.ceil(total / meta.page_size));
      const page = Math.min(Math.max(0, Number(params.get("page") || 0)), pages - 1);
      const head = document.getElementById("view-head");
      if (classId !== null) {
        const c = classes[classId] || {name: `class ${classId}`};
        head.append(el("h1", {}, `${c.name} (class ${classId})`), el("div", {class: "class-summary"},
          `${c.images} images: ${c.ok} ok, ${c.bad} bad, ${c.labelled} labelled, ${c.low} below p ${meta.low_prob} · ` +
          `mean target probability ${fmt(c.prob)} · foreground ${pct(c.fg)} · ignore ${pct(c.ignore)} · ` +
          `mean weight ${fmt(c.weight)} · disagreement ${fmt(c.disagreement)}`));
      } else {
        const titles = {all: "All labelled images", low: `Images whose target probability is below ${meta.low_prob}`, bad: "Bad inputs"};
        head.append(el("h1", {}, titles[view] || view));
      }
      const picker = el("input", {id: "class-pick", placeholder: "go to class…", type: "search"});
      picker.setAttribute("list", "class-names");
      const names = el("datalist", {id: "class-names"});
      Object.values(classes).forEach((c) => names.append(el("option", {value: `${c.name} (${c.id})`})));
      picker.addEventListener("change", () => {
        const match = /\((\d+)\)$/.exec(picker.value);
        if (match) go({view: "class" + match[1], page: 0});
      });
      head.append(el("div", {}, picker, names));
      const sorts = document.getElementById("sorts");
      sorts.append("sort: ");
      for (const k of keys) {
        const active = k === key;
        const button = el("button", {class: active ? "active" : "", "data-key": k},
          (meta.keys[k] || k) + (active ? (dir === "asc" ? " ↑" : " ↓") : ""));
        button.addEventListener("click", () => go({sort: k, dir: active && dir === "asc" ? "desc" : "asc", page: 0}));
        sorts.append(button);
      }
      const filter = el("input", {id: "filter", type: "search", placeholder: "filter this page (class, path)"});
      sorts.append(" ", filter);
      const pager = document.getElementById("pager");
      const link = (label, target) => (target >= 0 && target < pages
        ? el("a", {href: "?" + new URLSearchParams({...Object.fromEntries(params), view, sort: key, dir, page: target})}, label)
        : el("span", {}, ""));
      pager.append(link("« first", 0), link("‹ previous", page - 1),
        el("span", {id: "page-of"}, `page ${page + 1} of ${pages} (${total} images) `), link("next ›", page + 1), link("last »", pages - 1));
      const grid = document.getElementById("grid");
      const rows = await viewRows(meta, view, key, dir, page * meta.page_size, meta.page_size, total);
      rows.forEach((row) => grid.append(card(meta, classes, row, key)));
      filter.addEventListener("input", () => {
        const needle = filter.value.toLowerCase();
        for (const node of grid.children) node.style.display = node.textContent.toLowerCase().includes(needle) ? "" : "none";
      });
      document.body.dataset.ready = "1";
    } catch (error) { fail(error); }
  }

  function panelGrid(meta, index) {
    const layout = meta.layout, size = meta.panel;
    const grid = el("div", {class: "panels"});
    grid.style.gridTemplateColumns = `repeat(${layout.columns}, ${size}px)`;
    const url = `grids/${shardOf(meta, index)}/${index}.jpg`;
    for (const panel of layout.panels) {
      const picture = el("div", {class: "picture"});
      Object.assign(picture.style, {width: size + "px", height: size + "px", backgroundImage: `url(${url})`,
        backgroundPosition: `-${panel.col * size}px -${panel.row * size}px`,
        backgroundSize: `${layout.columns * size}px ${layout.rows * size}px`, imageRendering: "pixelated"});
      const cell = el("div", {class: "panel", "data-kind": panel.kind}, picture, el("div", {class: "caption"}, panel.caption));
      cell.style.gridRow = String(panel.row + 1);
      cell.style.gridColumn = String(panel.col + 1);
      grid.append(cell);
    }
    return grid;
  }

  function legend(meta) {
    const bar = el("span", {class: "bar"});
    bar.style.background = `linear-gradient(to right, ${meta.map_colours.join(", ")})`;
    const grey = el("span", {class: "bar"});
    grey.style.background = "linear-gradient(to right, #000, #fff)";
    const swatch = (colour) => { const s = el("span", {class: "swatch"}); s.style.background = colour; return s; };
    return el("div", {}, el("div", {class: "legend"}, "maps and consensus: 0 ", bar, " 1 (each member's map / its 99th percentile, capped at 1)"),
      el("div", {class: "legend"}, "weight: 0 ", grey, " 1"),
      el("div", {class: "legend"}, "mask:", swatch("#000"), "background", swatch("#fff"), "foreground", swatch("#00c8ff"), "ignore"));
  }

  async function imagePage() {
    try {
      const meta = await load("meta");
      header(meta);
      const index = Number(params.get("i") || 0);
      const rows = await load(`shard/${shardOf(meta, index)}`);
      const row = rows.find((r) => r.index === index);
      const main = document.getElementById("image");
      main.append(el("h1", {}, `[${index}] ${row.path}`));
      main.append(el("nav", {}, el("a", {href: `image.html?i=${index - 1}`}, "‹ previous image"),
        el("a", {href: `image.html?i=${index + 1}`}, "next image ›"),
        el("a", {href: `index.html?view=class${row.target}`}, `all of ${row.target_name}`)));
      const table = el("table", {id: "index-row"});
      const line = (name, value) => table.append(el("tr", {}, el("th", {}, name), el("td", {}, value)));
      line("path", row.path);
      line("class", `${row.class} (id ${row.class_id}, from ${row.class_source})`);
      line("target", `${row.target_name} (id ${row.target})`);
      line("status", row.status + (row.error ? `: ${row.error}` : ""));
      line("size", `${row.size[0]} x ${row.size[1]}`);
      line("foreground / ignore", `${pct(row.fg_share)} / ${pct(row.ignore_share)}`);
      line("mean weight", fmt(row.mean_weight));
      line("disagreement among members", fmt(row.disagreement));
      if (meta.objectness.length) line("objectness IoU with the foreground", fmt(row.objectness_iou));
      main.append(table);
      const models = el("table", {id: "models"}, el("tr", {}, el("th", {}, "model"), el("th", {}, "top-1"), el("th", {}, "p(target)")));
      const probabilities = row.models.map((m) => m.target_prob).filter((p) => p !== null);
      const mean = probabilities.length ? probabilities.reduce((a, b) => a + b, 0) / probabilities.length : null;
      for (const m of row.models) {
        models.append(el("tr", {}, el("td", {}, m.model), el("td", {}, `${m.top1_name} (${m.top1})`), el("td", {class: "num"}, fmt(m.target_prob, 4))));
      }
      models.append(el("tr", {}, el("th", {}, "mean"), el("td", {}, mean !== null && mean < meta.low_prob ?
        `below ${meta.low_prob}: the classifiers barely see the target` : ""), el("td", {class: "num"}, fmt(mean, 4))));
      main.append(el("h2", {}, "classifiers"), models);
      if (row.status === "ok" && row.fg_share !== null) {
        main.append(el("h2", {}, "maps (rows: models, columns: explainers), then the label"), panelGrid(meta, index), legend(meta));
      }
      document.body.dataset.ready = "1";
    } catch (error) { fail(error); }
  }

  async function classesPage() {
    try {
      const meta = await load("meta");
      header(meta);
      const classes = await load("classes");
      const columns = [["id", "id"], ["name", "class"], ["images", "images"], ["ok", "ok"], ["bad", "bad"],
        ["low", `p < ${meta.low_prob}`], ["prob", "mean p(target)"], ["fg", "foreground"], ["ignore", "ignore"],
        ["weight", "mean weight"], ["disagreement", "disagreement"]];
      const sortKey = params.get("sort") || "weight", dir = params.get("dir") === "desc" ? -1 : 1;
      const missing = (c) => c[sortKey] === null;  // classes without labels come last, either way
      classes.sort((a, b) => (missing(a) !== missing(b) ? (missing(a) ? 1 : -1)
        : a[sortKey] < b[sortKey] ? -dir : a[sortKey] > b[sortKey] ? dir : a.id - b.id));
      const table = el("table", {id: "class-table"});
      table.append(el("tr", {}, ...columns.map(([k, title]) => {
        const th = el("th", {class: "sortable"}, title + (k === sortKey ? (dir > 0 ? " ↑" : " ↓") : ""));
        th.addEventListener("click", () => go({sort: k, dir: k === sortKey && dir > 0 ? "desc" : "asc"}));
        return th;
      })));
      for (const c of classes) {
        table.append(el("tr", {}, ...columns.map(([k]) => {
          if (k === "name") return el("td", {}, el("a", {href: `index.html?view=class${c.id}`}, c.name));
          const shown = ["fg", "ignore"].includes(k) ? pct(c[k]) : ["prob", "weight", "disagreement"].includes(k) ? fmt(c[k]) : c[k];
          return el("td", {class: "num"}, String(shown));
        })));
      }
      document.getElementById("classes").append(el("h1", {}, `${classes.length} classes`), table);
      document.body.dataset.ready = "1";
    } catch (error) { fail(error); }
  }

  return {put, load, indexPage, imagePage, classesPage};
})();
