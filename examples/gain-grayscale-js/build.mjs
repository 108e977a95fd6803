// Builds a JavaScript effect into a component:
//   node build.mjs SOURCE.js WIT_DIR WORLD OUT.wasm
// WORLD is a Sandstream world (audio-effect, video-effect, av-effect; build.sh
// passes its own). WASI features the effect does not use are left out, so
// the component imports as little as possible (Sandstream grants nothing
// anyway).
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const [sourcePath, witPath, world, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node build.mjs SOURCE.js WIT_DIR WORLD OUT.wasm');
  process.exit(2);
}
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName: `sandstream:av/${world}`,
  disableFeatures: ['http', 'fetch-event', 'random', 'clocks'],
});
await writeFile(out, component);
