// `grayscale-js`: the `grayscale` example in JavaScript, built with the Bytecode
// Alliance's official toolchain (ComponentizeJS). It implements the
// `sandstream:av/video-effect` world and nothing more: JavaScript cannot hand
// out a buffer that stays put in linear memory, so frames reach it as lists
// (`sandstream check` says "video data path: lists").
//
// Build: `cargo xtask guests` (runs `npm install` and `node build.mjs` here),
// or by hand: `npm install && node build.mjs grayscale.js ../../wit out.wasm`.

export const setup = {
  configure(_config, formats) {
    if (!formats.video) {
      throw "grayscale-js needs a video stream";
    }
  },
};

export const video = {
  // `pixels` is a Uint8Array of RGBA8; processed in place and returned.
  processVideo(_info, pixels) {
    for (let i = 0; i < pixels.length; i += 4) {
      // BT.601 luma in 1/256ths, the same integer maths as the Rust example,
      // so both produce the same bytes.
      const luma = (77 * pixels[i] + 150 * pixels[i + 1] + 29 * pixels[i + 2] + 128) >> 8;
      pixels[i] = luma;
      pixels[i + 1] = luma;
      pixels[i + 2] = luma;
    }
    return pixels;
  },
};
