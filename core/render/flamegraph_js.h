/* The flame graph's style and script (flamegraph_svg.c), fixed text that
 * goes into every SVG as is.  The script runs in the SVG's own document:
 * click a frame to zoom on it (the bottom frame, "all", or Escape zooms
 * out), "Search" (or Ctrl-F, "/") highlights frames whose name or file
 * matches a regular expression and shows the share of samples under them,
 * and the line at the bottom details the frame under the pointer.  It
 * reads names with getAttribute and writes them with textContent only:
 * names are target text.  It must never contain "]]>", which would close
 * the CDATA section it sits in. */
#ifndef ASYNCUNWIND_FLAMEGRAPH_JS_H
#define ASYNCUNWIND_FLAMEGRAPH_JS_H

#define FLAMEGRAPH_STYLE \
    "<style type=\"text/css\">\n" \
    "text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }\n" \
    "#title { font-size: 17px; text-anchor: middle; }\n" \
    ".btn { cursor: pointer; fill: #1a4f8b; }\n" \
    ".f { cursor: pointer; }\n" \
    ".f text { pointer-events: none; }\n" \
    ".f:hover rect { stroke: #000; stroke-width: 0.5; }\n" \
    ".hid { display: none; }\n" \
    ".par rect { opacity: 0.5; }\n" \
    "</style>\n"

#define FLAMEGRAPH_SCRIPT \
    "\"use strict\";\n" \
    "(function () {\n" \
    "  var svg = document.documentElement;\n" \
    "  var W = 1200, PAD = 10, CH = 7;\n" \
    "  var total = +svg.getAttribute(\"data-total\") || 0;\n" \
    "  var frames = Array.prototype.slice.call(document.querySelectorAll(\"#frames > g.f\"));\n" \
    "  var details = document.getElementById(\"details\");\n" \
    "  var matchedText = document.getElementById(\"matched\");\n" \
    "  var unzoomBtn = document.getElementById(\"unzoom\");\n" \
    "  var searchBtn = document.getElementById(\"search\");\n" \
    "  var info = frames.map(function (g) {\n" \
    "    var r = g.querySelector(\"rect\");\n" \
    "    return {\n" \
    "      g: g, rect: r, text: g.querySelector(\"text\"),\n" \
    "      x: +g.getAttribute(\"data-x\"), s: +g.getAttribute(\"data-s\"),\n" \
    "      y: +r.getAttribute(\"y\"), name: g.getAttribute(\"data-n\") || \"\",\n" \
    "      loc: g.getAttribute(\"data-l\") || \"\", fill: r.getAttribute(\"fill\")\n" \
    "    };\n" \
    "  });\n" \
    "  var zoomed = null, searchRe = null;\n" \
    "\n" \
    "  function pct(n) { return total ? (100 * n / total).toFixed(2) + \"%\" : \"0.00%\"; }\n" \
    "\n" \
    "  function label(f, w) {\n" \
    "    var fit = Math.floor((w - 6) / CH);\n" \
    "    if (fit < 3) return \"\";\n" \
    "    var chars = Array.from(f.name);\n" \
    "    return chars.length <= fit ? f.name : chars.slice(0, fit - 2).join(\"\") + \"..\";\n" \
    "  }\n" \
    "\n" \
    "  function place(f, x, w) {\n" \
    "    f.rect.setAttribute(\"x\", x.toFixed(2));\n" \
    "    f.rect.setAttribute(\"width\", w.toFixed(2));\n" \
    "    f.text.setAttribute(\"x\", (x + 3).toFixed(2));\n" \
    "    f.text.textContent = label(f, w);\n" \
    "  }\n" \
    "\n" \
    "  /* Zoom on f: its ancestors span the width (dimmed), f and what it\n" \
    "   * calls scale to fill it, everything else hides. */\n" \
    "  function zoom(f) {\n" \
    "    var scale = (W - 2 * PAD) / f.s;\n" \
    "    info.forEach(function (o) {\n" \
    "      var inside = o.x >= f.x && o.x + o.s <= f.x + f.s;\n" \
    "      var below = o.y > f.y && o.x <= f.x && o.x + o.s >= f.x + f.s;\n" \
    "      o.g.classList.toggle(\"hid\", !(below || (inside && o.y <= f.y)));\n" \
    "      o.g.classList.toggle(\"par\", below);\n" \
    "      if (below) place(o, PAD, W - 2 * PAD);\n" \
    "      else if (inside && o.y <= f.y) place(o, PAD + (o.x - f.x) * scale, o.s * scale);\n" \
    "    });\n" \
    "    zoomed = f;\n" \
    "    unzoomBtn.classList.remove(\"hid\");\n" \
    "  }\n" \
    "\n" \
    "  function unzoom() {\n" \
    "    var scale = total ? (W - 2 * PAD) / total : 0;\n" \
    "    info.forEach(function (o) {\n" \
    "      o.g.classList.remove(\"hid\", \"par\");\n" \
    "      place(o, PAD + o.x * scale, o.s * scale);\n" \
    "    });\n" \
    "    zoomed = null;\n" \
    "    unzoomBtn.classList.add(\"hid\");\n" \
    "  }\n" \
    "\n" \
    "  /* Highlight the frames whose text matches; the matched share counts\n" \
    "   * each sample once, however many matching frames it passes through. */\n" \
    "  function search(term) {\n" \
    "    var re;\n" \
    "    try { re = new RegExp(term); } catch (e) { re = new RegExp(term.replace(/[.*+?^${}()|[\\]\\\\]/g, \"\\\\$&\")); }\n" \
    "    searchRe = re;\n" \
    "    var hits = [];\n" \
    "    info.forEach(function (o) {\n" \
    "      var hit = re.test(o.name) || (o.loc !== \"\" && re.test(o.loc));\n" \
    "      o.rect.setAttribute(\"fill\", hit ? \"rgb(230,0,230)\" : o.fill);\n" \
    "      o.g.classList.toggle(\"match\", hit);\n" \
    "      if (hit) hits.push(o);\n" \
    "    });\n" \
    "    hits.sort(function (a, b) { return a.x - b.x || b.s - a.s; });\n" \
    "    var covered = 0, end = -1;\n" \
    "    hits.forEach(function (o) {\n" \
    "      if (o.x >= end) { covered += o.s; end = o.x + o.s; }\n" \
    "      else if (o.x + o.s > end) { covered += o.x + o.s - end; end = o.x + o.s; }\n" \
    "    });\n" \
    "    matchedText.textContent = \"Matched: \" + pct(covered);\n" \
    "    searchBtn.textContent = \"Reset Search\";\n" \
    "    return covered;\n" \
    "  }\n" \
    "\n" \
    "  function resetSearch() {\n" \
    "    info.forEach(function (o) { o.rect.setAttribute(\"fill\", o.fill); o.g.classList.remove(\"match\"); });\n" \
    "    searchRe = null;\n" \
    "    matchedText.textContent = \" \";\n" \
    "    searchBtn.textContent = \"Search\";\n" \
    "  }\n" \
    "\n" \
    "  function askSearch() {\n" \
    "    if (searchRe) { resetSearch(); return; }\n" \
    "    var term = window.prompt(\"Search for (a regular expression):\", \"\");\n" \
    "    if (term) search(term);\n" \
    "  }\n" \
    "\n" \
    "  info.forEach(function (o) {\n" \
    "    o.g.addEventListener(\"click\", function () {\n" \
    "      if (o.g.getAttribute(\"data-k\") === \"r\") unzoom(); else zoom(o);\n" \
    "    });\n" \
    "    o.g.addEventListener(\"mouseover\", function () {\n" \
    "      details.textContent = o.name + (o.loc ? \" (\" + o.loc + \")\" : \"\") + \": \" + o.s +\n" \
    "        \" samples, \" + pct(o.s);\n" \
    "    });\n" \
    "    o.g.addEventListener(\"mouseout\", function () { details.textContent = \" \"; });\n" \
    "  });\n" \
    "  unzoomBtn.addEventListener(\"click\", unzoom);\n" \
    "  searchBtn.addEventListener(\"click\", askSearch);\n" \
    "  window.addEventListener(\"keydown\", function (e) {\n" \
    "    if ((e.ctrlKey && e.key === \"f\") || e.key === \"/\") { e.preventDefault(); askSearch(); }\n" \
    "    else if (e.key === \"Escape\") { if (zoomed) unzoom(); else if (searchRe) resetSearch(); }\n" \
    "  });\n" \
    "  /* For scripts that drive the graph (the tests do): */\n" \
    "  window.flamegraph = { zoom: function (i) { zoom(info[i]); }, unzoom: unzoom,\n" \
    "                        search: search, resetSearch: resetSearch };\n" \
    "})();\n"

#endif
