//go:build !wasip1

package sandstream

import "os"

// Built for anything but GOOS=wasip1 (an editor, go vet, tests of an
// effect's own functions), the package has no host: its log goes to stderr.
func hostLog(level uint32, message string) {
	os.Stderr.WriteString("[" + [...]string{"trace", "debug", "info", "warn", "error"}[min(level, 4)] + "] " + message + "\n")
}
