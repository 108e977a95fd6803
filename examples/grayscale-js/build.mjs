// Builds a JavaScript effect into a component:
//   node build.mjs SOURCE.js WIT_DIR OUT.wasm
// WASI features the effect does not use are left out, so the component
// imports as little as possible (Sandstream grants nothing anyway).
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const [sourcePath, witPath, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node build.mjs SOURCE.js WIT_DIR OUT.wasm');
  process.exit(2);
}
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName: 'sandstream:av/video-effect',
  disableFeatures: ['http', 'fetch-event', 'random', 'clocks'],
});
await writeFile(out, component);
