module sandstream.dev/sandstream

go 1.24
