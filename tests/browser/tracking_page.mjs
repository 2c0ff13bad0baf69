// The tracking page in a real browser: Debian's Chromium, headless, on a
// phone-sized screen (390 px wide, and a small one of 320 px). For each URL
// given (name=url): no request leaves the daemon, nothing scrolls sideways,
// no step label runs out of its step into the next one, the heading and the
// status are visible, the page is in the language asked for, its smallest
// text (the steps) is at least 12 px, and its text stands out from its
// background by the contrast WCAG asks of body text (4.5:1); a screenshot
// of each goes to OUTDIR. A button drawn by its border alone (the second
// one, white) has a border that stands out by WCAG's 3:1 for controls, and
// the marks that say where the order is (the progress bar's steps done and
// the current one, the history's current dot and line) stand out by
// WCAG's 3:1 for graphics.
// Usage: node tracking_page.mjs OUTDIR name=url[,lang,text] ...
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [outdir, ...pages] = process.argv.slice(2);
if (!outdir || pages.length === 0) {
  console.error('usage: node tracking_page.mjs OUTDIR name=url,lang,text ...');
  process.exit(2);
}
fs.mkdirSync(outdir, { recursive: true });
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failures = 0;
const fail = (msg) => { failures++; console.log('FAIL: ' + msg); };
try {
  for (const width of [390, 320]) {
  const ctx = await browser.newContext({
    viewport: { width, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  for (const spec0 of pages) {
    const spec = width === 390 ? spec0 : spec0.replace('=', `@${width}=`);
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const [url, lang, text] = spec.slice(eq + 1).split(',');
    const origin = new URL(url).origin;
    const page = await ctx.newPage();
    const foreign = [];
    page.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith(origin) && !u.startsWith('data:')) foreign.push(u);
    });
    const resp = await page.goto(url, { waitUntil: 'load' });
    if (!resp || resp.status() !== 200) fail(`${name}: status ${resp && resp.status()}`);
    if (foreign.length) fail(`${name}: requests to elsewhere: ${foreign.join(' ')}`);
    const got = await page.evaluate((screenWidth) => {
      // WCAG 2 contrast: relative luminance of a computed colour, and the
      // first background behind an element
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => [r, g, b].map((v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
      const bg = (el) => {
        for (; el; el = el.parentElement) {
          const c = rgb(getComputedStyle(el).backgroundColor);
          if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      return {
        lang: document.documentElement.lang,
        // against the phone's width: a mobile browser widens its layout
        // viewport to what overflows (and shrinks the page to fit), so
        // innerWidth grows with the overflow
        sideways: document.documentElement.scrollWidth - screenWidth,
        h1: document.querySelector('h1')?.innerText || '',
        h1Visible: !!document.querySelector('h1')?.getBoundingClientRect().height,
        body: document.body.innerText,
        state: document.querySelector('.state')?.innerText || '',
        stylesApplied: getComputedStyle(document.querySelector('header')).backgroundColor,
        stepPx: [...document.querySelectorAll('.steps li')]
          .map((li) => parseFloat(getComputedStyle(li).fontSize)),
        images: [...document.images].map((img) => ({ src: img.src, ok: img.complete && img.naturalWidth > 0 })),
        // a label wider than its step is drawn over the next one
        stepOverflow: [...document.querySelectorAll('.steps li')]
          .filter((li) => li.scrollWidth > li.clientWidth)
          .map((li) => `${li.innerText.replace(/\u00ad/g, '')} by ${li.scrollWidth - li.clientWidth}px`),
        // WCAG 2 contrast of each element's own text against the first
        // background behind it
        lowContrast: (() => {
          const out = [];
          for (const el of document.body.querySelectorAll('*')) {
            const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
            if (!own || !el.getClientRects().length) continue;
            const ratio = contrast(lum(rgb(getComputedStyle(el).color)), lum(bg(el)));
            if (ratio < 4.5) out.push(`"${el.innerText.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
          }
          return out;
        })(),
        // WCAG 2's 3:1 for what shows a control (1.4.11): the second
        // button is white on white but for its border
        lowBorder: [...document.querySelectorAll('.btn.alt')].map((el) => ({
          text: el.innerText.trim(),
          ratio: contrast(lum(rgb(getComputedStyle(el).borderTopColor)), lum(bg(el.parentElement))),
        })).filter((x) => x.ratio < 3).map((x) => `"${x.text}" ${x.ratio.toFixed(2)}:1`),
        // and for graphics that carry meaning: the progress bar's steps
        // done and the current one, the history's current dot and line
        lowMark: [
          ...[...document.querySelectorAll('.steps li.done, .steps li.now')].map((el) => ({
            what: `step "${el.innerText.replace(/\u00ad/g, '').trim()}"`,
            color: getComputedStyle(el).borderTopColor, el,
          })),
          ...[...document.querySelectorAll('ol.tl li.now')].flatMap((el) => [
            { what: 'the current dot', color: getComputedStyle(el, '::before').backgroundColor, el },
            { what: 'the current line', color: getComputedStyle(el).borderLeftColor, el },
          ]),
        ].map((x) => ({ what: x.what, ratio: contrast(lum(rgb(x.color)), lum(bg(x.el))) }))
          .filter((x) => x.ratio < 3).map((x) => `${x.what} ${x.ratio.toFixed(2)}:1`),
      };
    }, width);
    if (got.lang !== lang) fail(`${name}: lang ${got.lang}, expected ${lang}`);
    if (got.sideways > 0) fail(`${name}: scrolls sideways by ${got.sideways}px on a phone`);
    if (!got.h1Visible) fail(`${name}: no visible heading`);
    if (!got.state) fail(`${name}: no status line`);
    if (text && !got.body.includes(text)) fail(`${name}: "${text}" not on the page`);
    if (got.stylesApplied === 'rgba(0, 0, 0, 0)') fail(`${name}: the inline styles did not apply`);
    const small = got.stepPx.filter((px) => px < 12);
    if (small.length) fail(`${name}: step labels of ${small.join(', ')} px (at least 12)`);
    for (const img of got.images) if (!img.ok) fail(`${name}: image not shown: ${img.src}`);
    if (got.stepOverflow.length) fail(`${name}: step labels wider than their step: ${got.stepOverflow.join(', ')}`);
    if (got.lowContrast.length) fail(`${name}: text below 4.5:1 contrast: ${got.lowContrast.join(', ')}`);
    if (got.lowBorder.length) fail(`${name}: a button's border below 3:1 contrast: ${got.lowBorder.join(', ')}`);
    if (got.lowMark.length) fail(`${name}: marks below 3:1 contrast: ${got.lowMark.join(', ')}`);
    const file = path.join(outdir, `tracking-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`${name}: ${got.h1} | ${got.state} | screenshot ${file}`);
    await page.close();
  }
  await ctx.close();
  }
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
