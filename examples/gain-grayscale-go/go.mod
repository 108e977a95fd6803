module sandstream.dev/examples/gain-grayscale-go

go 1.24

// Written by `sandstream bindings --lang go` at build time (see build.sh):
// no download, no go.sum entry.
require sandstream.dev/sandstream v0.0.0
