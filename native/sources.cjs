#!/usr/bin/env node
// The one list of C++ sources, read by both builds:
//   binding.gyp:    node native/sources.cjs <group>          (paths relative to the repo root)
//   CMakeLists.txt: node sources.cjs --cmake <group>         (absolute paths, ';'-separated)
// Groups: "core" (everything compiled with baseline flags) and one group per ISA
// ("avx2", "avx512", "neon") whose files get that ISA's compiler flags, and "vulkan" (the
// Vulkan backend: only the cmake build with SPARROW_VULKAN compiles it). A new .cpp file
// joins a group by being put in its folder; nothing else needs editing.
'use strict';
const fs = require('fs');
const path = require('path');

const here = __dirname;
const GROUPS = {
  core: ['core', 'quant', 'kernels', 'kernels/generic', 'backend', 'model', 'sparse', 'sparse/generic', 'runtime', 'gpu', 'addon'],
  avx2: ['kernels/avx2', 'sparse/avx2'],
  avx512: ['kernels/avx512', 'sparse/avx512'],
  neon: ['kernels/neon', 'sparse/neon'],
  vulkan: ['gpu/vulkan'],
};

function list(group) {
  const dirs = GROUPS[group];
  if (!dirs) throw new Error(`unknown source group '${group}' (known: ${Object.keys(GROUPS).join(', ')})`);
  const out = [];
  for (const d of dirs) {
    const abs = path.join(here, d);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs).sort()) if (f.endsWith('.cpp') || f.endsWith('.c')) out.push(path.join(abs, f));
  }
  return out;
}

module.exports = { list, GROUPS };

if (require.main === module) {
  const args = process.argv.slice(2);
  const cmake = args[0] === '--cmake';
  const group = cmake ? args[1] : args[0];
  const files = list(group);
  if (cmake) process.stdout.write(files.map((f) => f.split(path.sep).join('/')).join(';'));
  else process.stdout.write(files.map((f) => path.relative(path.join(here, '..'), f).split(path.sep).join('/')).join('\n') + '\n');
}
