// Each profile output checked by its real consumer (tests/profile_outputs_test.sh):
//
//   node profile_consumers.mjs NODE_ROOT CHROMIUM PREFIX [--seed] [--hostile] [--search TERM]
//
// PREFIX.collapsed, PREFIX.json (speedscope) and PREFIX.svg are one
// profile written three ways.  The collapsed stacks are the reference:
//   collapsed   speedscope's app (its own importer, in headless chromium)
//               loads it without an error, and its export holds exactly
//               those stacks and counts;
//   speedscope  valid against the schema speedscope ships (ajv), loaded by
//               the app the same way, and its stacks, read back from the
//               app's export and from the file itself, are the collapsed
//               ones;
//   svg         renders in chromium with no script error, every frame
//               drawn, task frames blue and code frames warm, tooltips and
//               the details line name the frame, zoom and search work, and
//               the frames rebuild the collapsed stacks exactly.
// --seed: func_not_awaited sits under parent (via [Task-not_awaited]) in
// every format.  --hostile: the names hold markup and scripts; nothing may
// run or appear as markup.  Prints one line per check and a summary.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { createRequire } from 'node:module';

const [nodeRoot, chromiumPath, prefix, ...flags] = process.argv.slice(2);
const require = createRequire(path.join(nodeRoot, 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const Ajv = require('ajv');
const speedscopeDir = path.join(nodeRoot, 'node_modules', 'speedscope', 'dist', 'release');
const seed = flags.includes('--seed');
const hostile = flags.includes('--hostile');
const searchTerm = flags.includes('--search') ? flags[flags.indexOf('--search') + 1] : 'sleep';

let passed = 0, failed = 0;
function check(ok, what, detail) {
  if (ok) { passed++; console.log(`ok: ${what}`); }
  else { failed++; console.log(`FAIL: ${what}${detail ? ': ' + detail : ''}`); }
}

// Names differ by format only in what each must escape: collapsed turns a
// line break or tab into a space, another control character into \xNN and
// ';' into ':', the SVG a control character into '?'.  Comparisons see
// through exactly that.
const norm = s => s.replace(/;/g, ':').replace(/\\x[0-9a-f]{2}/g, '_')
  .replace(/[\s?\u0000-\u001f\u007f]/g, '_');

function addStack(map, names, count) {
  const key = names.map(norm).join(';');
  map.set(key, (map.get(key) || 0) + count);
}

function readCollapsed(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sp = line.lastIndexOf(' ');
    addStack(m, line.slice(0, sp).split(';'), Number(line.slice(sp + 1)));
  }
  return m;
}

function frameName(f) {
  return f.file !== undefined ? `${f.name} (${f.file}:${f.line !== undefined ? f.line : '?'})` : f.name;
}

// Stacks of a speedscope file, sampled or evented.  In ours the profile's
// name is the thread, the root of every stack (unless it is the stack's
// own root, as for the dropped stack); a collapsed file imported has its
// roots in the stacks already (threadRoots false).
function readSpeedscope(doc, threadRoots = true) {
  const m = new Map();
  const names = doc.shared.frames.map(frameName);
  for (const p of doc.profiles) {
    const root = first => (!threadRoots || first === p.name ? [] : [p.name]);
    if (p.type === 'sampled') {
      p.samples.forEach((s, i) => {
        const st = s.map(k => names[k]);
        addStack(m, root(st[0]).concat(st), p.weights[i]);
      });
    } else {
      const open = [];
      let last = p.startValue;
      for (const e of p.events) {
        if (e.at > last && open.length) {
          const st = open.map(k => names[k]);
          addStack(m, root(st[0]).concat(st), e.at - last);
        }
        last = e.at;
        if (e.type === 'O') open.push(e.frame); else open.pop();
      }
    }
  }
  return m;
}

function sameStacks(got, want) {
  if (got.size !== want.size) return `${got.size} stacks, want ${want.size}`;
  for (const [k, v] of want) {
    if (got.get(k) !== v) return `stack ${k}: count ${got.get(k)}, want ${v}`;
  }
  return null;
}

// Every stack holding func_not_awaited holds [Task-not_awaited] and parent
// before it, in that order.
function seedUnder(stacks) {
  let seen = 0;
  for (const k of stacks.keys()) {
    const names = k.split(';');
    const i = names.findIndex(n => n.startsWith('func_not_awaited'));
    if (i < 0) continue;
    seen++;
    const t = names.findIndex(n => n === '[Task-not_awaited]');
    const p = names.findIndex(n => n.startsWith('parent_('));
    if (!(p >= 0 && t > p && i > t)) return `not under parent: ${k}`;
  }
  return seen ? null : 'no func_not_awaited';
}

async function openSpeedscope(context, file, label) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('dialog', d => { errors.push('dialog: ' + d.message()); d.dismiss(); });
  // What speedscope's own command line does: a script that hands the file
  // to the app, named in the URL.
  const loader = path.join(os.tmpdir(), `profile-consumers-${process.pid}-${label}.js`);
  fs.writeFileSync(loader, `speedscope.loadFileFromBase64(${JSON.stringify(path.basename(file))}, ` +
    `${JSON.stringify(fs.readFileSync(file).toString('base64'))})`);
  await page.goto(`file://${speedscopeDir}/index.html#localProfilePath=${loader}`);
  await page.getByText('Export').waitFor({ timeout: 20000 }).catch(() => {});
  let exported = null;
  try {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }),
                                    page.getByText('Export').click()]);
    exported = JSON.parse(fs.readFileSync(await dl.path(), 'utf8'));
  } catch (e) {
    errors.push('export: ' + e.message);
  }
  fs.unlinkSync(loader);
  await page.close();
  return { errors, exported };
}

async function checkSvg(context, file, collapsed) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('console', m => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  let dialogs = [];
  page.on('dialog', d => {
    dialogs.push(d.message());
    if (d.type() === 'prompt') d.accept(searchTerm); else d.dismiss();
  });
  await page.goto(`file://${path.resolve(file)}`);
  check(errors.length === 0, 'svg: no script errors', errors.join('; '));
  const doc = await page.evaluate(() => ({
    root: document.documentElement.localName,
    scripts: document.getElementsByTagName('script').length,
    title: document.getElementById('title').textContent,
    total: +document.documentElement.getAttribute('data-total'),
    api: typeof window.flamegraph,
    frames: Array.from(document.querySelectorAll('#frames > g.f')).map(g => {
      const r = g.querySelector('rect'), b = r.getBBox();
      return { k: g.getAttribute('data-k'), n: g.getAttribute('data-n'), l: g.getAttribute('data-l'),
               x: +g.getAttribute('data-x'), s: +g.getAttribute('data-s'), y: +r.getAttribute('y'),
               w: b.width, h: b.height, fill: r.getAttribute('fill'),
               tip: g.querySelector('title').textContent, label: g.querySelector('text').textContent };
    }),
  }));
  check(doc.root === 'svg' && doc.scripts === 1 && doc.api === 'object',
        'svg: one document, its own script ran', JSON.stringify([doc.root, doc.scripts, doc.api]));
  check(doc.frames.length > 1 && doc.frames.every(f => f.w > 0 && f.h > 0),
        `svg: ${doc.frames.length} frames drawn`);
  const rgb = f => f.fill.match(/\d+/g).map(Number);
  const tasks = doc.frames.filter(f => f.k === 't'), code = doc.frames.filter(f => f.k === 'c');
  check(code.length > 0 && code.every(f => { const [r, , b] = rgb(f); return r > b + 100; }),
        'svg: code frames warm');
  if (tasks.length)
    check(tasks.every(f => { const [r, , b] = rgb(f); return b > r + 100; }), 'svg: task frames blue');
  const f0 = code[0];
  check(f0.tip.startsWith(f0.n) && f0.tip.includes(f0.l) &&
        new RegExp(`\\n${f0.s} samples, \\d+\\.\\d\\d%$`).test(f0.tip),
        'svg: tooltip has name, file:line, samples and percent', JSON.stringify(f0.tip));

  // The frames rebuild the collapsed stacks: a frame's parent is the frame
  // one row below whose range holds it; its own samples are its width
  // less its children's.
  const byDepth = new Map();
  for (const f of doc.frames) {
    if (!byDepth.has(f.y)) byDepth.set(f.y, []);
    byDepth.get(f.y).push(f);
  }
  const fullName = f => (f.l ? `${f.n} (${f.l})` : f.n);
  const rebuilt = new Map();
  for (const f of doc.frames) {
    if (f.k === 'r') continue;
    const names = [];
    let kids = 0;
    for (const c of byDepth.get(f.y - 16) || []) if (c.x >= f.x && c.x < f.x + f.s) kids += c.s;
    for (let g = f, y = f.y; g && g.k !== 'r'; y += 16) {
      names.unshift(fullName(g));
      g = (byDepth.get(y + 16) || []).find(p => p.x <= g.x && g.x < p.x + p.s);
    }
    if (f.s > kids) addStack(rebuilt, names, f.s - kids);
  }
  const diff = sameStacks(rebuilt, collapsed);
  check(!diff, 'svg: frames rebuild the collapsed stacks', diff);
  if (seed) check(!seedUnder(rebuilt), 'svg: func_not_awaited under parent', seedUnder(rebuilt));

  // Hover: the details line names the frame.
  const gIndex = doc.frames.indexOf(f0);
  await page.locator('#frames > g.f').nth(gIndex).hover({ force: true });
  const details = await page.locator('#details').textContent();
  check(details.startsWith(f0.n) && details.includes(`${f0.s} samples`), 'svg: hover details', details);

  // Zoom on a frame that is not everything: it spans the width, frames
  // outside it hide, "Reset Zoom" shows; the reset restores.
  const target = doc.frames.find(f => f.k !== 'r' && f.s < doc.total && f.y < doc.frames[0].y - 16) ||
                 doc.frames.find(f => f.k !== 'r');
  const ti = doc.frames.indexOf(target);
  await page.locator('#frames > g.f').nth(ti).click({ force: true });
  const z = await page.evaluate(i => {
    const gs = Array.from(document.querySelectorAll('#frames > g.f'));
    const r = gs[i].querySelector('rect');
    return { x: +r.getAttribute('x'), w: +r.getAttribute('width'),
             hidden: gs.filter(g => g.classList.contains('hid')).length,
             reset: !document.getElementById('unzoom').classList.contains('hid') };
  }, ti);
  const others = doc.frames.filter(f => f.k !== 'r' && (f.x + f.s <= target.x || f.x >= target.x + target.s)).length;
  check(Math.abs(z.x - 10) < 0.01 && Math.abs(z.w - 1180) < 0.01 && z.reset && z.hidden === others,
        'svg: zoom', JSON.stringify({ z, others }));
  await page.locator('#unzoom').click({ force: true });
  const back = await page.evaluate(() => Array.from(document.querySelectorAll('#frames > g.f'))
    .every(g => !g.classList.contains('hid')));
  check(back, 'svg: reset zoom');

  // Search through the button and its prompt: the matched share is that of
  // the stacks through a matching frame.
  await page.locator('#search').click({ force: true });
  const s = await page.evaluate(() => ({
    matched: document.getElementById('matched').textContent,
    hits: document.querySelectorAll('#frames > g.f.match').length,
    purple: Array.from(document.querySelectorAll('#frames > g.f.match rect'))
      .every(r => r.getAttribute('fill') === 'rgb(230,0,230)'),
  }));
  let hitCount = 0, total = 0;
  const re = new RegExp(searchTerm);
  for (const [k, v] of collapsed) { total += v; if (k.split(';').some(n => re.test(n))) hitCount += v; }
  const want = `Matched: ${(100 * hitCount / total).toFixed(2)}%`;
  check(dialogs.length === 1 && s.matched === want && s.hits > 0 && s.purple,
        `svg: search "${searchTerm}"`, JSON.stringify({ s, want, dialogs }));
  if (hostile) {
    const marks = await page.evaluate(() => document.querySelectorAll('#frames script, #frames title title').length);
    check(marks === 0 && doc.title.startsWith('<script>alert("title")</script>]]>&') && doc.frames.some(f => f.n.includes('<script>')),
          'svg: hostile names stay text');
  }
  check(errors.length === 0, 'svg: no script errors after interaction', errors.join('; '));
  await page.close();
}

const collapsedText = fs.readFileSync(`${prefix}.collapsed`, 'utf8');
const collapsed = readCollapsed(collapsedText);
check(collapsed.size > 0, `collapsed: ${collapsed.size} stacks`);
if (seed) check(!seedUnder(collapsed), 'collapsed: func_not_awaited under parent', seedUnder(collapsed));

const doc = JSON.parse(fs.readFileSync(`${prefix}.json`, 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(speedscopeDir, 'file-format-schema.json'), 'utf8')));
check(validate(doc), 'speedscope: valid against speedscope\'s file-format-schema.json',
      JSON.stringify(validate.errors));
const fromJson = readSpeedscope(doc);
let diff = sameStacks(fromJson, collapsed);
check(!diff, 'speedscope: the collapsed stacks', diff);
if (seed) check(!seedUnder(fromJson), 'speedscope: func_not_awaited under parent', seedUnder(fromJson));

const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ acceptDownloads: true });
  for (const [label, file] of [['collapsed', `${prefix}.collapsed`], ['speedscope', `${prefix}.json`]]) {
    const r = await openSpeedscope(context, file, label);
    check(r.errors.length === 0 && r.exported, `${label}: speedscope's app imports it`, r.errors.join('; '));
    if (r.exported) {
      const got = readSpeedscope(r.exported, label !== 'collapsed');
      diff = sameStacks(got, collapsed);
      check(!diff, `${label}: speedscope's import holds the collapsed stacks`, diff);
      if (seed) check(!seedUnder(got), `${label}: in speedscope, func_not_awaited under parent`, seedUnder(got));
    }
  }
  await checkSvg(context, `${prefix}.svg`, collapsed);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
