module sandstream.dev/examples/gain-go

go 1.24

require sandstream.dev/sandstream v0.0.0

// The SDK is in this repository: no download, no go.sum entry.
replace sandstream.dev/sandstream => ../../guest-sdk/go
