package sandstream

import (
	"errors"
	"iter"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Config is the user's configuration: `--set key=value` flags and the
// config file's [config] table, as strings, keys unique.
//
// The typed getters parse as the Rust SDK does (surrounding whitespace
// trimmed, Rust's number syntax) and fail with its messages, e.g.
// "setting `gain`: cannot read \"loud\" as f32".
type Config struct {
	entries []setting
}

type setting struct{ key, value string }

// Get is the raw value of key, and whether it is set.
func (c Config) Get(key string) (string, bool) {
	for _, e := range c.entries {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

// All yields every key and value, in the order the host sent them.
func (c Config) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, e := range c.entries {
			if !yield(e.key, e.value) {
				return
			}
		}
	}
}

// Len is the number of settings.
func (c Config) Len() int { return len(c.entries) }

// Require fails with "missing required setting `key` (pass --set
// key=VALUE)" when key is not set; then read it with a getter.
func (c Config) Require(key string) error {
	if _, ok := c.Get(key); !ok {
		return errors.New("missing required setting `" + key + "` (pass --set " + key + "=VALUE)")
	}
	return nil
}

// String is the value of key, or fallback when it is not set.
func (c Config) String(key, fallback string) string {
	if value, ok := c.Get(key); ok {
		return value
	}
	return fallback
}

// Float32 is key parsed as a float32, or fallback when it is not set.
func (c Config) Float32(key string, fallback float32) (float32, error) {
	v, err := get(c, key, float64(fallback), "f32", func(s string) (float64, bool) { return parseFloat(s, 32) })
	return float32(v), err
}

// Float64 is key parsed as a float64, or fallback when it is not set.
func (c Config) Float64(key string, fallback float64) (float64, error) {
	return get(c, key, fallback, "f64", func(s string) (float64, bool) { return parseFloat(s, 64) })
}

// Int32 is key parsed as an int32, or fallback when it is not set.
func (c Config) Int32(key string, fallback int32) (int32, error) {
	v, err := get(c, key, int64(fallback), "i32", func(s string) (int64, bool) {
		v, err := strconv.ParseInt(s, 10, 32) // a sign and digits, as Rust
		return v, err == nil
	})
	return int32(v), err
}

// Uint32 is key parsed as a uint32, or fallback when it is not set.
func (c Config) Uint32(key string, fallback uint32) (uint32, error) {
	v, err := get(c, key, uint64(fallback), "u32", func(s string) (uint64, bool) {
		// Rust takes one leading '+' (never '-'); ParseUint takes no sign.
		if strings.HasPrefix(s, "+") {
			s = s[1:]
		}
		v, err := strconv.ParseUint(s, 10, 32)
		return v, err == nil
	})
	return uint32(v), err
}

// Bool is key parsed as a bool ("true" or "false"), or fallback.
func (c Config) Bool(key string, fallback bool) (bool, error) {
	return get(c, key, fallback, "bool", func(s string) (bool, bool) {
		return s == "true", s == "true" || s == "false"
	})
}

func get[T any](c Config, key string, fallback T, typeName string, parse func(string) (T, bool)) (T, error) {
	raw, ok := c.Get(key)
	if !ok {
		return fallback, nil
	}
	if v, ok := parse(strings.TrimSpace(raw)); ok {
		return v, nil
	}
	return fallback, errors.New("setting `" + key + "`: cannot read " + rustQuote(raw) + " as " + typeName)
}

// parseFloat takes what Rust's f32/f64 parse takes: a sign, then "inf",
// "infinity" or "nan" (any case), or digits with an optional '.' and
// exponent. Out of range is infinity, as in Rust, not an error.
func parseFloat(s string, bits int) (float64, bool) {
	body := s
	negative := false
	if len(body) > 0 && (body[0] == '+' || body[0] == '-') {
		negative = body[0] == '-'
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if negative {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	if !rustDecimal(body) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, bits)
	var numErr *strconv.NumError
	if err != nil && !(errors.As(err, &numErr) && numErr.Err == strconv.ErrRange) {
		return 0, false
	}
	return v, true
}

// rustDecimal reports whether s is digits, '.' digits, and an exponent, as
// Rust writes numbers: "1", "1.", ".5", "1e-3"; not "", ".", "0x1p0", "1_0".
func rustDecimal(s string) bool {
	digits := func() int {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		s = s[n:]
		return n
	}
	mantissa := digits()
	if strings.HasPrefix(s, ".") {
		s = s[1:]
		mantissa += digits()
	}
	if mantissa == 0 {
		return false
	}
	if len(s) > 0 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		if digits() == 0 {
			return false
		}
	}
	return s == ""
}

// rustQuote writes s as Rust's `{:?}` does: in quotes, with \" \\ \n \r \t
// \0 escaped and other unprintable or combining characters as \u{hex}.
func rustQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if strconv.IsPrint(r) && !unicode.In(r, unicode.Mn, unicode.Me) {
				b.WriteRune(r)
			} else {
				b.WriteString(`\u{` + strconv.FormatInt(int64(r), 16) + `}`)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
