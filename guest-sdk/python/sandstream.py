"""sandstream: a thin helper for Sandstream effects in Python.

componentize-py generates the bindings (the `wit_world` package) from the
WIT file `sandstream bindings --lang python` writes; this module sits on top
of them and takes away the boilerplate:

  - Config: typed getters whose error messages are those of the Rust SDK
    ("setting `gain`: cannot read \"loud\" as f32"), raised as `Err`, so a
    failing `configure` needs no code of its own;
  - f32() and fmt_f32(): Python floats are f64; these round to f32 and print
    an f32 the way Rust does, so results match the Rust examples bit for bit;
  - trace() ... error(): one line in the host's log;
  - mapped_buffer(): a buffer that stays put, for the mapped worlds, where
    the host writes each block or frame straight into the effect's memory.

componentize-py bundles it into the component when its directory is on the
module path (the examples' build.sh copies it beside app.py). It works with
every Sandstream world: all of them import `log` and `types`.
"""

import math
import re
import struct
from array import array
from decimal import Decimal

from componentize_py_types import Err
from wit_world.imports.log import Level, log
from wit_world.imports.types import Buffers, Outcome, Region

__all__ = ["Config", "Err", "f32", "fmt_f32", "trace", "debug", "info", "warn", "error",
           "mapped_buffer", "KEEP", "DROP"]


# ---- Logging ---------------------------------------------------------------

def trace(message):
    log(Level.TRACE, str(message))


def debug(message):
    log(Level.DEBUG, str(message))


def info(message):
    log(Level.INFO, str(message))


def warn(message):
    log(Level.WARN, str(message))


def error(message):
    log(Level.ERROR, str(message))


# ---- Buffers of the mapped worlds -----------------------------------------

# What a mapped `process` returns: keep the output buffer, or drop the item.
KEEP = Outcome.KEEP
DROP = Outcome.DROP


def mapped_buffer(count, typecode="B"):
    """A zeroed buffer of `count` items in this instance's memory, as a
    writable memoryview, and the Buffers that `prepare` returns for it (one
    region for input and output: the effect works in place).

    typecode is the array module's: "B" for RGBA8 frames, "f" for f32
    samples. The host writes into the buffer on every call, so it must never
    move: CPython does not move objects, and refuses to resize an array while
    a view of it exists. Keep the view for the life of the instance.
    """
    items = array(typecode, bytes(count * array(typecode).itemsize))
    view = memoryview(items)
    address, _ = items.buffer_info()
    region = Region(address, view.nbytes)
    return view, Buffers(region, region)


# ---- f32 -------------------------------------------------------------------

_F32 = struct.Struct("<f")
_U32 = struct.Struct("<I")


def f32(x):
    """`x` rounded to the nearest f32 (ties to even), as Rust's `x as f32`.

    For f32 values a and b, f32(a * b), f32(a + b), f32(a - b) and
    f32(a / b) are bit for bit Rust's f32 arithmetic (a product is exact in
    a Python float; for the others a float is precise enough that rounding
    twice does no harm). Floats in a list returned to the host, or stored in
    an array("f"), are rounded this way on the way out.
    """
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def fmt_f32(x):
    """An f32 as Rust's `{}` prints it: "0.3", "1", "-0", "inf", "NaN"."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    for digits in range(9):  # the fewest digits that read back as the same f32
        text = f"{x:.{digits}e}"
        if f32(float(text)) == x:
            break
    return f"{Decimal(text).normalize():f}"


# ---- Configuration ---------------------------------------------------------

# What Rust's str::trim() removes (Unicode White_Space); str.strip() would
# remove a few control characters more.
_WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + \
    "\u2028\u2029\u202f\u205f\u3000"

# The syntax Rust's parse() accepts (Python's float() and int() accept more:
# "1_000", "١٢", surrounding spaces).
_FLOAT = re.compile(r"[+-]?(inf|infinity|nan|([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?)",
                    re.IGNORECASE)
_SIGNED = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"\+?[0-9]+")


def _parse_f64(text):
    return float(text) if _FLOAT.fullmatch(text) else None


def _parse_f32(text):
    """Rust's f32 parse: the decimal rounded once, straight to f32."""
    if not _FLOAT.fullmatch(text):
        return None
    x = float(text)
    y = f32(x)
    if y == x or math.isnan(x) or math.isinf(x):
        return y
    # Going through f64 rounds twice, which can only go wrong when x landed
    # exactly halfway between two f32 values; the exact decimal decides then.
    bits = _U32.unpack(_F32.pack(y))[0]
    other = _F32.unpack(_U32.pack(bits + (1 if abs(x) > abs(y) else -1)))[0]
    edge = math.copysign(2.0 ** 128, y) if math.isinf(y) else y  # where inf starts
    if (edge + other) / 2 == x and Decimal(text) != Decimal(x):
        return other if (Decimal(text) > Decimal(x)) == (other > y) else y
    return y


def _parse_int(pattern, low, high):
    def parse(text):
        if not pattern.fullmatch(text):
            return None
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) > 20:  # out of range (and int() refuses 4300 digits)
            return None
        value = int(digits or "0")
        value = -value if text[0] == "-" else value
        return value if low <= value <= high else None
    return parse


def _parse_bool(text):
    return {"true": True, "false": False}.get(text)


_REQUIRED = object()

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def _quote(raw):
    """Rust's `{:?}` of a string: quoted, escapes for what does not print."""
    out = []
    for c in raw:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c.isprintable() and (c < "\x80" or not _combining(c)):
            out.append(c)
        else:
            out.append(f"\\u{{{ord(c):x}}}")
    return '"' + "".join(out) + '"'


def _combining(c):
    import unicodedata  # only for non-ASCII text
    return unicodedata.category(c) in ("Mn", "Me")


class Config:
    """The user's configuration (`--set key=value`, the config file's
    `[config]` table), as `configure` receives it: a list of (key, value).

    Each getter takes the key and a default returned when the key is not
    set; without a default the key is required. A value that does not parse
    raises Err with the Rust SDK's message, which the host shows the user:

        gain = Config(config).get_f32("gain", 1.0)
    """

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def get(self, key):
        """The raw value of `key`, or None when it is not set."""
        for k, v in self.pairs:
            if k == key:
                return v
        return None

    def _read(self, key, default, parse, type_name):
        raw = self.get(key)
        if raw is None:
            if default is _REQUIRED:
                raise Err(f"missing required setting `{key}` (pass --set {key}=VALUE)")
            return default
        value = parse(raw.strip(_WHITESPACE))
        if value is None:
            raise Err(f"setting `{key}`: cannot read {_quote(raw)} as {type_name}")
        return value

    def get_str(self, key, default=_REQUIRED):
        """The value with surrounding whitespace removed (as Rust's String)."""
        return self._read(key, default, lambda text: text, "String")

    def get_f32(self, key, default=_REQUIRED):
        """A float rounded to f32, as Rust reads an f32 (the default too)."""
        if default is not _REQUIRED:
            default = f32(default)
        return self._read(key, default, _parse_f32, "f32")

    def get_f64(self, key, default=_REQUIRED):
        return self._read(key, default, _parse_f64, "f64")

    def get_i32(self, key, default=_REQUIRED):
        return self._read(key, default, _parse_int(_SIGNED, -2**31, 2**31 - 1), "i32")

    def get_u32(self, key, default=_REQUIRED):
        return self._read(key, default, _parse_int(_UNSIGNED, 0, 2**32 - 1), "u32")

    def get_i64(self, key, default=_REQUIRED):
        return self._read(key, default, _parse_int(_SIGNED, -2**63, 2**63 - 1), "i64")

    def get_u64(self, key, default=_REQUIRED):
        return self._read(key, default, _parse_int(_UNSIGNED, 0, 2**64 - 1), "u64")

    def get_bool(self, key, default=_REQUIRED):
        """Exactly "true" or "false", as Rust reads a bool."""
        return self._read(key, default, _parse_bool, "bool")
