"""The leaderboard page's own style and script, inlined into the one HTML file so it opens offline.

Kept as Python strings rather than .css/.js files so they travel with the package without
package-data settings. The script sorts tables by any column (numbers by value, "—" last),
collapses column groups, filters rows by the selects above the tables, and on load collapses the
least-read groups until each table fits its container.
"""

CSS = r"""
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:0 1.5em 2em;
  color:#222;max-width:1900px;font-size:14px;line-height:1.35}
h1{font-size:1.5em;margin:.6em 0 .3em}h2{font-size:1.25em;margin:1.4em 0 .3em;border-bottom:2px solid #dde3ea}
h3{font-size:1.02em;margin:1em 0 .3em}
.intro,.note{max-width:110em}.note{color:#a50;margin:.3em 0}.intro{color:#555;font-size:13px}
code{background:#f1f3f5;padding:0 .3em;border-radius:3px}
#filters{position:sticky;top:0;z-index:10;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;
  display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center;font-size:13px}
#filters label{white-space:nowrap}#filters select,#filters input{font-size:13px;max-width:16em}
#filters .hint{color:#777}
.wrap{overflow-x:auto;max-width:100%;margin-bottom:.4em}
table.lb{border-collapse:collapse;font-size:12.5px}
.lb th,.lb td{padding:3px 6px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top;
  overflow-wrap:break-word;max-width:24em}
.lb .n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.lb thead th{background:#f4f6f8;font-weight:600;cursor:pointer;user-select:none;vertical-align:bottom}
.lb thead th:hover{background:#e6ebf1}
.lb tr.groups th{background:#e3e8ef;text-align:center;cursor:default;font-weight:600;color:#334}
.lb tr.groups th.g-labels,.lb tr.groups th.g-run{background:transparent}
.lb tr.groups button{font-size:11px;margin-left:.4em;padding:0 .35em;cursor:pointer;border:1px solid #aab;
  border-radius:3px;background:#fff}
.lb .gs{border-left:2px solid #c9d1db}
.lb th[aria-sort=ascending]::after{content:" \25B2";font-size:9px}
.lb th[aria-sort=descending]::after{content:" \25BC";font-size:9px}
.lb tbody tr:hover{background:#f3f8ff}.lb tr.best td{font-weight:600}
.lb a{color:#1a5fb4;text-decoration:none}.lb a:hover{text-decoration:underline}
.count{color:#777;font-size:12px;margin:0 0 1em}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px;margin:.8em 0}
.plots .fig{border:1px solid #eee;min-width:0}.plots .wide{grid-column:1/-1}
[hidden]{display:none!important}
"""

JS = r"""
// Leaderboard page: sortable columns (numbers by value, "—" last), column groups that collapse,
// filters that hide rows (and task sections), and a fit to the window on load.
(function () {
  "use strict";
  const all = (sel, el) => Array.from((el || document).querySelectorAll(sel));
  const cols = (t) => all("thead tr.cols th", t);
  const text = (cell) => cell.textContent.trim();
  const NUM = /^[-+]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?(\s*±.*)?$/i;
  const num = (s) =>
    s === "" || s === "—" ? null : NUM.test(s) ? parseFloat(s.replace(/,/g, "")) : undefined;

  function setup(t) {
    const rows = Array.from(t.tBodies[0].rows);
    let last = null;
    cols(t).forEach((th, i) => {
      const numeric = rows.length > 0 && rows.every((r) => num(text(r.cells[i])) !== undefined);
      const start = th.dataset.g !== last;
      last = th.dataset.g;
      th.dataset.num = numeric ? "1" : "";
      for (const cell of [th, ...rows.map((r) => r.cells[i])]) {
        if (numeric) cell.classList.add("n");
        if (start && i > 0) cell.classList.add("gs");
      }
      th.tabIndex = 0;
      th.title = (th.title ? th.title + " — " : "") + "click to sort";
      th.addEventListener("click", () => sort(t, i));
      th.addEventListener("keydown", (e) => e.key === "Enter" && sort(t, i));
    });
    all("tr.groups button", t).forEach((b) =>
      b.addEventListener("click", () => collapse(t, b.closest("th").dataset.g)));
  }

  function sort(t, i) {
    const th = cols(t)[i];
    const asc = th.getAttribute("aria-sort") !== "ascending";
    cols(t).forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    const numeric = th.dataset.num === "1";
    const key = (r) => {
      const s = text(r.cells[i]);
      return numeric ? num(s) : s === "" || s === "—" ? null : s;
    };
    const body = t.tBodies[0];
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;  // missing: last
      const c = numeric ? x - y : x.localeCompare(y, undefined, { numeric: true });
      return asc ? c : -c;
    });
    rows.forEach((r) => body.appendChild(r));
  }

  // A collapsed group keeps its first (key) column and hides the others.
  function collapse(t, g, force) {
    const head = t.querySelector(`tr.groups th[data-g="${g}"]`);
    const idx = cols(t).map((th, i) => (th.dataset.g === g ? i : -1)).filter((i) => i >= 0);
    const shut = force === undefined ? head.dataset.shut !== "1" : force;
    head.dataset.shut = shut ? "1" : "";
    for (const r of all("thead tr.cols, tbody tr", t)) {
      for (const i of idx.slice(1)) r.cells[i].hidden = shut;
    }
    head.colSpan = shut ? 1 : idx.length;
    const b = head.querySelector("button");
    b.textContent = shut ? `+${idx.length - 1}` : "−";
    b.title = shut ? `show ${idx.length - 1} more ${g} columns` : `collapse ${g} to its first column`;
  }

  // Collapse the least-read groups until the table fits its container (a click brings them back);
  // generalization stays open: past that the container scrolls, never the page.
  function fit(t) {
    const wrap = t.parentElement;
    for (const g of ["search", "cost", "calibration", "robustness", "shift"]) {
      if (wrap.scrollWidth <= wrap.clientWidth) return;
      const head = t.querySelector(`tr.groups th[data-g="${g}"]`);
      if (head && head.querySelector("button") && head.dataset.shut !== "1") collapse(t, g, true);
    }
  }

  function filter() {
    const want = {};
    all("#filters select").forEach((s) => { if (s.value) want[s.name] = s.value; });
    const q = document.getElementById("find").value.trim().toLowerCase();
    all("section.board").forEach((s) => { s.hidden = "task" in want && s.dataset.task !== want.task; });
    all("table.lb").forEach((t) => {
      const heads = cols(t);
      const rows = Array.from(t.tBodies[0].rows);
      rows.forEach((r) => {
        const ok = heads.every(
          (th, i) => !(th.dataset.col in want) || text(r.cells[i]) === want[th.dataset.col]);
        r.hidden = !(ok && (!q || r.textContent.toLowerCase().includes(q)));
      });
      const shown = rows.filter((r) => !r.hidden).length;
      t.closest(".view").querySelector(".count").textContent =
        shown === rows.length ? "" : `${shown} of ${rows.length} rows shown (filters above)`;
    });
  }

  all("table.lb").forEach(setup);
  all("table.lb").forEach(fit);
  all("#filters select").forEach((s) => s.addEventListener("change", filter));
  document.getElementById("find").addEventListener("input", filter);
  // plots are drawn while the page is still parsed; size each to its final place once it is laid out
  window.addEventListener("load", () => {
    if (window.Plotly) all(".js-plotly-plot").forEach((g) => window.Plotly.Plots.resize(g));
  });
})();
"""
