/** The package version, read from the package's own package.json. */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../native.js';

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
