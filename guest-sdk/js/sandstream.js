// sandstream.js: a thin helper for Sandstream effects in JavaScript
// (ComponentizeJS). `sandstream bindings --lang js` writes it beside the
// WIT; an effect imports it: import { getF32 } from './sandstream.js';
//
// getF32(config, key, fallback): a setting as an f32, read as the Rust SDK
//   reads it, or throws the Rust SDK's message.
// fmtNonFinite(value): inf, -inf or NaN, as Rust prints them.

// ---- Reading settings as the Rust SDK does -----------------------------
//
// `config` is an array of [key, value] strings. A value is trimmed (of
// Unicode White_Space, as Rust's str::trim) and parsed with Rust's syntax
// for f32; a value that does not parse gets the Rust SDK's message:
//     setting `gain`: cannot read "loud" as f32

// `key` as an f32, or `fallback` when it is not set.
export function getF32(config, key, fallback) {
  const entry = config.find(([k]) => k === key);
  if (!entry) {
    return Math.fround(fallback);
  }
  const raw = entry[1];
  const value = parseF32(raw.replace(TRIM, ''));
  if (value === undefined) {
    throw `setting \`${key}\`: cannot read ${rustQuote(raw)} as f32`;
  }
  return value;
}

// What Rust's str::trim() removes (Unicode White_Space; String.trim() would
// keep U+0085 and remove U+FEFF). Listed, like UNPRINTABLE below: the
// engine ComponentizeJS builds on has no Unicode tables for regular
// expressions, so \p{...} is a syntax error there.
const WHITE = String.raw`[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
const TRIM = new RegExp(`^${WHITE}+|${WHITE}+$`, 'g');

// What Rust's f32 parse accepts: a sign, then "inf", "infinity" or "nan" in
// any case, or digits with an optional '.' and exponent ("1", "1.", ".5",
// "1e-3"; not "", ".", "0x10" or "1_0", some of which Number() takes).
const SPECIAL = /^[+-]?(inf|infinity|nan)$/i;
const DECIMAL = /^([+-]?)([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?$/;

// `text` as Rust parses an f32 (the decimal rounded once, straight to the
// nearest f32, out of range being infinity), or undefined.
function parseF32(text) {
  const special = SPECIAL.exec(text);
  if (special) {
    const negative = text[0] === '-';
    return special[1].toLowerCase() === 'nan' ? NaN : negative ? -Infinity : Infinity;
  }
  const decimal = DECIMAL.exec(text);
  if (!decimal || decimal[2] + decimal[3] === '') {
    return undefined;
  }
  // Number() rounds to the nearest f64, Math.fround then to the nearest
  // f32. Rounding twice goes wrong only when the f64 lands exactly halfway
  // between two f32 values (y and its neighbour on x's side) while the
  // decimal itself was not halfway: its exact value decides then.
  const x = Number(text);
  const y = Math.fround(x);
  if (y === x) {
    return y;
  }
  const other = nextF32(y, Math.abs(x) > Math.abs(y));
  const edge = Number.isFinite(y) ? y : Math.sign(y) * 2 ** 128; // where inf starts
  if ((edge + other) / 2 !== x) {
    return y;
  }
  const side = compareExact(decimal, x);
  return side !== 0 && (side > 0) === (other > y) ? other : y;
}

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

// The f32 next to y, away from zero (or towards it).
function nextF32(y, away) {
  f32View[0] = y;
  f32Bits[0] += away ? 1 : -1;
  return f32View[0];
}

// The sign of (the decimal - x), exactly, for a finite x != 0 of the same
// sign; the decimal comes as DECIMAL matched it. |decimal| = digits × 10^tens
// and |x| = mantissa × 2^shift, all integers: compared as integers.
function compareExact([, sign, whole, fraction, exponent], x) {
  const digits = BigInt(whole + fraction);
  const tens = Number(exponent ?? 0) - fraction.length;
  let mantissa = Math.abs(x);
  let shift = 0;
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2; // exact
    shift -= 1;
  }
  const left = digits * 10n ** BigInt(Math.max(tens, 0)) << BigInt(Math.max(-shift, 0));
  const right = BigInt(mantissa) * 10n ** BigInt(Math.max(-tens, 0));
  const difference = left > right ? 1 : left < right ? -1 : 0;
  return sign === '-' ? -difference : difference;
}

// Rust's `{}` of an f32 that is not finite.
export function fmtNonFinite(value) {
  return Number.isNaN(value) ? 'NaN' : value > 0 ? 'inf' : '-inf';
}

// Rust's `{:?}` of a string: quoted, with \" \\ \n \r \t \0 escaped, and
// characters that do not print, or combine with the one before, as \u{hex}.
const ESCAPES = new Map([
  ['"', '\\"'],
  ['\\', '\\\\'],
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
  ['\0', '\\0'],
]);
// Rust escapes every control, separator (but the space), format character,
// private-use or unassigned code point, and combining mark. Without \p{...}
// (see TRIM) they are listed: all controls, separators and format
// characters, private use, the unassigned planes and noncharacters, and the
// blocks of combining marks (U+0300-036F and the like). The marks within a
// script's own block (Hebrew points, Devanagari vowel signs, ...) and other
// unassigned code points are written as they are, where Rust escapes them;
// the host escapes them when it shows the message (it does so for every
// guest's text), so the user still reads what the Rust example says.
const UNPRINTABLE = new RegExp(
  '[\\0-\\x1f\\x7f-\\xa0\\xad\\u0300-\\u036f\\u0483-\\u0489\\u0600-\\u0605\\u061c' +
    '\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u1680\\u180e\\u1ab0-\\u1aff\\u1dc0-\\u1dff' +
    '\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u206f\\u20d0-\\u20ff\\u3000\\ud800-\\uf8ff' +
    '\\ufdd0-\\ufdef\\ufe00-\\ufe0f\\ufe20-\\ufe2f\\ufeff\\ufff0-\\ufffb\\ufffe\\uffff' +
    '\\u{110bd}\\u{110cd}\\u{13430}-\\u{1343f}\\u{1bca0}-\\u{1bca3}\\u{1d173}-\\u{1d17a}' +
    '\\u{40000}-\\u{dffff}\\u{e0000}-\\u{e0fff}\\u{f0000}-\\u{10ffff}]',
  'u',
);

function rustQuote(raw) {
  let out = '"';
  for (const c of raw) {
    if (ESCAPES.has(c)) {
      out += ESCAPES.get(c);
    } else if (UNPRINTABLE.test(c)) {
      out += `\\u{${c.codePointAt(0).toString(16)}}`;
    } else {
      out += c;
    }
  }
  return out + '"';
}
