/**
 * `--html FILE`: one self-contained page (inline CSS and SVG, no script, no external
 * asset) with, per model, a bar chart of the ratios sparrow / llama.cpp (whiskers: the
 * min-max over rounds) and a chart of the throughputs of each engine, then the full
 * table. `renderHtml(report)` is a pure function of the report, so the test can render a
 * canned report and look at it in a headless browser.
 */
import { FIGURES, HIGHER_IS_BETTER, figureLabel, formatRatio, formatValue, sparrowWins, type BenchReport, type Figure, type ModelReport } from './report.js';
import { ENGINES } from './options.js';

export const COLORS = {
  win: '#2e9e5b', // sparrow better
  lose: '#d9822b', // llama.cpp better
  sparrow: '#3366cc',
  'llama.cpp': '#8c8c8c',
  axis: '#333333',
} as const;

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 0)} MiB`;

const n = (x: number): string => (Math.round(x * 10) / 10).toString();

/**
 * Horizontal bars of sparrow / llama.cpp for each figure on a log2 axis centred on 1
 * (same speed), so 2x and 0.5x are the same length; whiskers show the min-max over rounds.
 */
function ratioChart(model: ModelReport, report: BenchReport): string {
  const ratio = model.engines.sparrow?.ratio;
  if (!ratio) return '<p class="none">No ratio: llama.cpp or sparrow figures are missing for this model.</p>';
  const figs = FIGURES.filter((f) => f !== 'bandwidth_fraction' && ratio[f].median > 0);
  const extent = Math.max(1, ...figs.flatMap((f) => [ratio[f].min, ratio[f].max, ratio[f].median].filter((v) => v > 0).map((v) => Math.abs(Math.log2(v)))));
  const L = Math.min(5, Math.ceil(extent)); // axis from 2^-L to 2^L, at most 1/32x..32x
  const W = 860, labelW = 130, valueW = 280, rowH = 34, padTop = 26;
  const plotW = W - labelW - valueW;
  const x = (v: number) => labelW + ((Math.max(-L, Math.min(L, Math.log2(v))) + L) / (2 * L)) * plotW;
  const H = padTop + figs.length * rowH + 26;
  const one = x(1);
  const parts: string[] = [];
  for (let k = -L; k <= L; k++) {
    const tx = labelW + ((k + L) / (2 * L)) * plotW;
    const label = k >= 0 ? `${2 ** k}x` : `1/${2 ** -k}x`;
    parts.push(`<line x1="${n(tx)}" x2="${n(tx)}" y1="${padTop - 4}" y2="${H - 20}" stroke="#e4e4e4"/>`);
    parts.push(`<text class="hint" x="${n(tx)}" y="${H - 6}" text-anchor="middle">${label}</text>`);
  }
  figs.forEach((f, i) => {
    const r = ratio[f];
    const y = padTop + i * rowH;
    const win = sparrowWins(f, r.median);
    const xr = x(r.median);
    parts.push(`<text x="${labelW - 8}" y="${y + 21}" text-anchor="end">${esc(figureLabel(f, report.settings))}</text>`);
    parts.push(
      `<rect class="bar" data-figure="${f}" data-ratio="${r.median}" x="${n(Math.min(one, xr))}" y="${y + 6}" ` +
        `width="${n(Math.max(2, Math.abs(xr - one)))}" height="22" fill="${win ? COLORS.win : COLORS.lose}"/>`,
    );
    if (r.samples.filter(Number.isFinite).length > 1 && r.min > 0)
      parts.push(
        `<line class="whisker" x1="${n(x(r.min))}" x2="${n(x(r.max))}" y1="${y + 17}" y2="${y + 17}" stroke="${COLORS.axis}" stroke-width="2"/>`,
      );
    const hint = HIGHER_IS_BETTER[f] ? 'higher is better' : 'lower is better';
    parts.push(`<text x="${W - valueW + 10}" y="${y + 21}">${esc(formatRatio(r))} <tspan class="hint">${hint}</tspan></text>`);
  });
  parts.push(`<line x1="${n(one)}" x2="${n(one)}" y1="${padTop - 8}" y2="${H - 20}" stroke="${COLORS.axis}" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${n(one)}" y="${padTop - 12}" text-anchor="middle">1 = same as llama.cpp</text>`);
  return `<svg class="chart ratio" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="ratios sparrow / llama.cpp">${parts.join('')}</svg>`;
}

/** Grouped bars: pp and tg tokens/s of each engine. */
function speedChart(model: ModelReport, report: BenchReport): string {
  const figs: Figure[] = ['pp_tps', 'tg_tps'];
  const engines = ENGINES.filter((e) => model.engines[e]?.pp_tps != null);
  if (engines.length === 0) return '';
  const W = 860, labelW = 130, valueW = 280, barH = 18, padTop = 8;
  const plotW = W - labelW - valueW;
  const parts: string[] = [];
  let y = padTop;
  for (const f of figs) {
    const top = Math.max(1e-9, ...engines.map((e) => model.engines[e]![f] ?? 0));
    parts.push(`<text x="${labelW - 8}" y="${y + 14 + ((engines.length - 1) * (barH + 4)) / 2}" text-anchor="end">${esc(figureLabel(f, report.settings))}</text>`);
    for (const e of engines) {
      const v = model.engines[e]![f] ?? 0;
      parts.push(
        `<rect class="bar" data-figure="${f}" data-engine="${e}" x="${labelW}" y="${y}" width="${n((v / top) * plotW)}" height="${barH}" fill="${COLORS[e]}"/>`,
      );
      parts.push(`<text x="${W - valueW + 10}" y="${y + 14}">${esc(e)}: ${esc(formatValue(f, v))}</text>`);
      y += barH + 4;
    }
    y += 12;
  }
  return `<svg class="chart speed" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" role="img" aria-label="tokens per second">${parts.join('')}</svg>`;
}

function modelTable(model: ModelReport, report: BenchReport): string {
  const head = `<tr><th>figure</th>${ENGINES.map((e) => `<th>${e}</th>`).join('')}<th>ratio</th></tr>`;
  const rows = FIGURES.map((f) => {
    const cells = ENGINES.map((e) => {
      const en = model.engines[e];
      if (!en) return '<td>-</td>';
      const s = en.stats[f];
      const range = s.samples.filter(Number.isFinite).length > 1 ? ` <span class="hint">(${formatValue(f, s.min)} - ${formatValue(f, s.max)})</span>` : '';
      return `<td>${esc(formatValue(f, en[f]))}${range}</td>`;
    }).join('');
    return `<tr><td>${esc(figureLabel(f, report.settings))}</td>${cells}<td>${esc(formatRatio(model.engines.sparrow?.ratio?.[f]))}</td></tr>`;
  }).join('');
  return `<table>${head}${rows}</table>`;
}

export function renderHtml(report: BenchReport): string {
  const m = report.machine;
  const bw = m.bandwidth_bytes_per_s ? `${(m.bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s` : 'not measured';
  const engines = report.engines
    .map((e) => `<li><b>${esc(e.name)}</b>: ${esc(e.available ? e.version ?? 'available' : `not measured (${e.note ?? ''})`)}</li>`)
    .join('');
  const sections = report.models
    .map(
      (model) => `<section>
<h2>${esc(model.name)}</h2>
<p class="hint">${esc(model.file)} &middot; ${mib(model.file_bytes)} &middot; ${mib(model.weight_bytes_per_token)} of weights read per token</p>
<h3>sparrow / llama.cpp</h3>
${ratioChart(model, report)}
<h3>tokens per second</h3>
${speedChart(model, report)}
${modelTable(model, report)}
</section>`,
    )
    .join('\n');
  const notes = report.notes.map((x) => `<li>${esc(x)}</li>`).join('');
  const s = report.settings;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sparrow-llm bench: ${esc(m.cpu)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; color: #222; background: #fff; margin: 24px auto; max-width: 960px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 18px; margin: 28px 0 4px; } h3 { font-size: 14px; margin: 14px 0 4px; color: #555; }
svg.chart { display: block; font-size: 13px; } svg text { fill: #222; } .hint { color: #777; fill: #777; font-size: 12px; }
table { border-collapse: collapse; margin-top: 10px; } td, th { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
.none { color: #a00; } code { background: #f3f3f3; padding: 1px 4px; }
</style></head>
<body>
<h1>sparrow-llm bench</h1>
<p>${esc(m.cpu)}, ${m.logical_cpus} logical CPUs, ${s.threads} thread(s), kernels: ${esc(m.isa ?? '?')}, memory bandwidth ${esc(bw)}<br>
pp${s.pp} / tg${s.tg}, medians over ${s.rounds} round(s), ${esc(report.date)}<br><code>${esc(report.command)}</code></p>
<ul>${engines}</ul>
${sections}
${notes ? `<h2>notes</h2><ul>${notes}</ul>` : ''}
</body></html>
`;
}
