#!/usr/bin/env node
// `npx bench`: the compiled harness lives in dist/bench (built by `npm install` through
// the package's prepare script, or `npm run build:ts`).
let main;
try {
  ({ main } = await import('../dist/bench/main.js'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bench/main.js')) throw err;
  console.error('bench: dist/bench/main.js is missing; run `npm run build:ts` (or `npm install`) first');
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
