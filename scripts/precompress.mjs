// Writes a brotli (.br, quality 11) and a gzip (.gz, level 9) copy beside each compiled asset of
// the dashboard (target/site/pkg by default), for the server to send to browsers that take them.
// Run after `cargo leptos build`; copies older than their file are made again.
//
//   node scripts/precompress.mjs [DIR]
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dir = process.argv[2] ?? 'target/site/pkg';
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
