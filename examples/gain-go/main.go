// gain-go: the `gain` example in Go. Multiplies every audio sample by the
// `gain` setting (default 1), byte for byte like the Rust example.
//
// World: sandstream:av/audio-effect-mapped. Blocks never travel as lists:
// the host writes each block into a buffer the SDK keeps in the module's
// memory, and ProcessAudio works on it in place.
//
// Build it with ./build.sh (Go for GOOS=wasip1, then `sandstream
// componentize`), and run it:
//
//	sandstream run gain-go.wasm --audio-in tone:440 \
//	    --audio-out file:out.wav --set gain=0.5 --duration 2
package main

import (
	"errors"
	"math"

	"sandstream.dev/sandstream"
)

// Gain is the effect's state: just the factor, read once from the settings.
type Gain struct {
	gain float32
}

// Configure is called once, before any audio: read the settings.
func (g *Gain) Configure(config sandstream.Config, formats sandstream.Formats) error {
	// Float32 parses the value and fails with a readable message such as
	// "setting `gain`: cannot read \"loud\" as f32" when it cannot.
	gain, err := config.Float32("gain", 1)
	if err != nil {
		return err
	}
	if math.IsInf(float64(gain), 0) || math.IsNaN(float64(gain)) {
		// FormatFloat32 writes numbers as Rust does ("inf", not "+Inf").
		// (fmt.Errorf works too, but fmt makes the module bigger.)
		return errors.New("setting `gain` must be a finite number, got " + sandstream.FormatFloat32(gain))
	}
	g.gain = gain
	return nil
}

// ProcessAudio is called for every block: `samples` are interleaved, and a
// plain gain does not care about channels. Change them in place.
func (g *Gain) ProcessAudio(info sandstream.AudioInfo, samples []float32) (sandstream.Outcome, error) {
	for i := range samples {
		samples[i] *= g.gain
	}
	return sandstream.Keep, nil
}

// init hands the effect to the SDK; it runs when the host starts the module.
func init() {
	sandstream.Export(&Gain{gain: 1})
}

// main is never called (the module is a library), but Go wants one.
func main() {}
