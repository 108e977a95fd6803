package sandstream

import (
	"strconv"
	"testing"
)

// The Rust SDK's results for the same values (checked against
// examples/gain through the host): a number, or its error message.
func TestGettersReadAsRust(t *testing.T) {
	config := Config{entries: []setting{{"k", ""}}}
	float := []struct{ raw, want string }{
		{"0.3", "0.3"}, {" 0.5\t", "0.5"}, {"\u00a00.5\u2003", "0.5"}, {"1.", "1"},
		{".5", "0.5"}, {"+.5e3", "500"}, {"-0", "-0"}, {"1e39", "inf"}, {"-INF", "-inf"},
		{"Infinity", "inf"}, {"-nan", "NaN"}, {"1.5e-50", "0"},
		{"loud", `setting ` + "`k`" + `: cannot read "loud" as f32`},
		{"", `setting ` + "`k`" + `: cannot read "" as f32`},
		{".", `setting ` + "`k`" + `: cannot read "." as f32`},
		{"0x10", `setting ` + "`k`" + `: cannot read "0x10" as f32`},
		{"1_0", `setting ` + "`k`" + `: cannot read "1_0" as f32`},
		{"infinit", `setting ` + "`k`" + `: cannot read "infinit" as f32`},
		{"a\x01\"\\\n\u00a0e\u0301", `setting ` + "`k`" + `: cannot read "a\u{1}\"\\\n\u{a0}e\u{301}" as f32`},
	}
	for _, c := range float {
		config.entries[0].value = c.raw
		got, err := config.Float32("k", 1)
		text := FormatFloat32(got)
		if err != nil {
			text = err.Error()
		}
		if text != c.want {
			t.Errorf("Float32(%q) = %s, want %s", c.raw, text, c.want)
		}
	}
	ints := []struct {
		raw      string
		i32, u32 string
	}{
		{"42", "42", "42"}, {"+7", "7", "7"}, {"-3", "-3", `setting ` + "`k`" + `: cannot read "-3" as u32`},
		{"4294967295", `setting ` + "`k`" + `: cannot read "4294967295" as i32`, "4294967295"},
		{"1_000", `setting ` + "`k`" + `: cannot read "1_000" as i32`, `setting ` + "`k`" + `: cannot read "1_000" as u32`},
		{"+-1", `setting ` + "`k`" + `: cannot read "+-1" as i32`, `setting ` + "`k`" + `: cannot read "+-1" as u32`},
	}
	for _, c := range ints {
		config.entries[0].value = c.raw
		i, err := config.Int32("k", 0)
		if text := errorOr(err, strconv.Itoa(int(i))); text != c.i32 {
			t.Errorf("Int32(%q) = %s, want %s", c.raw, text, c.i32)
		}
		u, err := config.Uint32("k", 0)
		if text := errorOr(err, strconv.Itoa(int(u))); text != c.u32 {
			t.Errorf("Uint32(%q) = %s, want %s", c.raw, text, c.u32)
		}
	}
	if err := config.Require("gain"); err == nil || err.Error() != "missing required setting `gain` (pass --set gain=VALUE)" {
		t.Errorf("Require: %v", err)
	}
	if v, err := config.Float32("gain", 0.25); v != 0.25 || err != nil {
		t.Errorf("Float32 of a missing key: %v, %v", v, err)
	}
}

func errorOr(err error, text string) string {
	if err != nil {
		return err.Error()
	}
	return text
}
