/**
 * The HTML report: rendered from a canned report, opened in headless Chromium, and the
 * screenshot checked for the bars of each chart (counted by their colours). Skipped, with
 * a message, where Chromium is not installed (`apt-get install -y chromium`).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { COLORS, renderHtml } from '../../bench/html.js';
import { cannedReport } from './canned.js';
import { countColor, decodePng } from './png.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => fs.existsSync(p));
if (!CHROMIUM) console.warn('html.test: skipping the browser check: no chromium (install it with `apt-get install -y chromium`)');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-bench-html-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('HTML report', () => {
  it('is one self-contained page with a bar per ratio, escaped text and the table', () => {
    const html = renderHtml(cannedReport());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\/|<script|<link|<img|@import|url\(/);
    expect(html).toContain('Test CPU &lt;with&gt; &quot;markup&quot; &amp; co');
    // Two models x (5 ratio bars + 2 figures x 2 engines speed bars).
    expect(html.match(/<rect class="bar"/g)).toHaveLength(2 * (5 + 4));
    const ratios = [...html.matchAll(/data-figure="pp_tps" data-ratio="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(ratios.map((r) => r.toFixed(2))).toEqual(['1.20', '0.80']);
    expect(html).toContain('1.20x (1.05-1.28)');
  });

  it.skipIf(!CHROMIUM)('renders its charts in headless Chromium', () => {
    const file = path.join(tmp, 'report.html');
    const png = path.join(tmp, 'shot.png');
    fs.writeFileSync(file, renderHtml(cannedReport()));
    execFileSync(
      CHROMIUM!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${path.join(tmp, 'profile')}`,
        `--screenshot=${png}`,
        '--window-size=1200,2000',
        pathToFileURL(file).href,
      ],
      { stdio: 'pipe', timeout: 90_000 },
    );
    const img = decodePng(fs.readFileSync(png));
    expect([img.width, img.height]).toEqual([1200, 2000]);
    // Bars in each colour the charts use: sparrow ahead (green), behind (orange: the
    // q4_k_m pp/tg ratios), and the two engines' tokens/s bars. A bar is >= 2x22 px;
    // the real ones are far larger.
    const counts = Object.fromEntries(
      (['win', 'lose', 'sparrow', 'llama.cpp'] as const).map((c) => [c, countColor(img, COLORS[c])]),
    );
    for (const [c, n] of Object.entries(counts)) expect(n, `${c} pixels`).toBeGreaterThan(2000);
    // And the page is mostly background, not a blank or an error page.
    const white = countColor(img, '#ffffff', 2);
    expect(white / (img.width * img.height)).toBeGreaterThan(0.5);
    expect(white / (img.width * img.height)).toBeLessThan(0.99);
  });
});
