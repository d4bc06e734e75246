// Publishes the dashboard's compiled assets (target/site/pkg by default) for the server to send:
//
// 1. names the bundle after its content: billing.js, billing.wasm and billing.css, fresh from
//    `cargo leptos build`, become billing.<hash>.js, .wasm and .css (one hash over the three,
//    since the HTML names the bundle once), recorded in pkg/assets.json for `billing serve`,
//    which lets browsers keep such files for a year; older bundles are removed;
// 2. writes a brotli (.br, quality 11) and a gzip (.gz, level 9) copy beside each asset, for
//    browsers that take them. Copies older than their file are made again.
//
// Run after `cargo leptos build` (the Makefile's build targets do); running it again changes
// nothing.
//
//   node scripts/publish-assets.mjs [DIR]
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dir = process.argv[2] ?? 'target/site/pkg';
const kinds = ['js', 'wasm', 'css'];

const plain = kinds.map((kind) => path.join(dir, `billing.${kind}`));
if (plain.every(existsSync)) {
  const hash = createHash('sha256');
  for (const file of plain) hash.update(readFileSync(file));
  const bundle = `billing.${hash.digest('hex').slice(0, 20)}`;
  for (const name of readdirSync(dir)) {
    if (/^billing\.[0-9a-f]+\.(js|wasm|css)(\.br|\.gz)?$/.test(name) && !name.startsWith(`${bundle}.`)) {
      rmSync(path.join(dir, name));
    }
  }
  for (const kind of kinds) renameSync(path.join(dir, `billing.${kind}`), path.join(dir, `${bundle}.${kind}`));
  for (const copy of ['br', 'gz'].flatMap((suffix) => kinds.map((kind) => path.join(dir, `billing.${kind}.${suffix}`)))) {
    rmSync(copy, { force: true });
  }
  writeFileSync(path.join(dir, 'assets.json'), JSON.stringify({ bundle }) + '\n');
} else if (!existsSync(path.join(dir, 'assets.json'))) {
  console.warn(`${dir} holds no fresh billing.js, billing.wasm and billing.css and no assets.json: nothing renamed`);
}

for (const name of readdirSync(dir)) {
  if (!/\.(wasm|js|css)$/.test(name)) continue;
  const file = path.join(dir, name);
  const source = statSync(file);
  const body = readFileSync(file);
  const copies = [
    ['.br', () => brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } })],
    ['.gz', () => gzipSync(body, { level: 9 })],
  ];
  for (const [suffix, compress] of copies) {
    const target = file + suffix;
    let fresh = false;
    try {
      fresh = statSync(target).mtimeMs >= source.mtimeMs;
    } catch {}
    if (!fresh) writeFileSync(target, compress());
  }
  console.log(`${name}: ${body.length} bytes, brotli ${statSync(file + '.br').size}, gzip ${statSync(file + '.gz').size}`);
}
