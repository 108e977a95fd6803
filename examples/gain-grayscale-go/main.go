// gain-grayscale-go: one effect on both streams, in Go. It multiplies every
// audio sample by the `gain` setting (default 1), as the `gain` example
// does, and turns every video frame gray, as `grayscale` does, both byte
// for byte like the Rust examples. Start here for an effect whose audio and
// video share state (one instance gets both streams).
//
// World: sandstream:av/av-effect-mapped. Blocks and frames never travel as
// lists: the host writes each one into a buffer the SDK keeps in the
// module's memory, and ProcessAudio / ProcessVideo work on it in place.
// A run may have only one of the streams: the other method is then never
// called.
//
// Build it with ./build.sh (Go for GOOS=wasip1, then `sandstream
// componentize`), and run it:
//
//	sandstream run gain-grayscale-go.wasm --audio-in tone:440 \
//	    --video-in pattern --audio-out file:out.wav \
//	    --video-out file:gray.y4m --set gain=0.5 --duration 2
package main

import (
	"errors"
	"math"

	"sandstream.dev/sandstream"
)

// BT.601 luma weights in 1/256ths (77 + 150 + 29 = 256): integer maths, so
// every language computes the same bytes.
const (
	rWeight = 77
	gWeight = 150
	bWeight = 29
)

// GainGrayscale is the effect's state: the gain factor, read once from the
// settings. (Grayscale has no settings.)
type GainGrayscale struct {
	gain float32
}

// Configure is called once, before any audio or video: read the settings.
// formats.Audio or formats.Video is nil when the run has no such stream;
// this effect works with either or both.
func (e *GainGrayscale) Configure(config sandstream.Config, formats sandstream.Formats) error {
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
	e.gain = gain
	return nil
}

// ProcessAudio is called for every block: `samples` are interleaved, and a
// plain gain does not care about channels. Change them in place.
func (e *GainGrayscale) ProcessAudio(info sandstream.AudioInfo, samples []float32) (sandstream.Outcome, error) {
	for i := range samples {
		samples[i] *= e.gain
	}
	return sandstream.Keep, nil
}

// ProcessVideo is called for every frame: `pixels` holds width*height RGBA
// pixels, four bytes each. Change them in place.
func (e *GainGrayscale) ProcessVideo(info sandstream.VideoInfo, pixels []byte) (sandstream.Outcome, error) {
	// Four pixels per trip round the loop: in Go's WebAssembly every trip
	// jumps back through a table, and doing more per trip makes the whole
	// frame about 1.5x faster.
	for len(pixels) >= 16 {
		gray(pixels[0:4:4])
		gray(pixels[4:8:8])
		gray(pixels[8:12:12])
		gray(pixels[12:16:16])
		pixels = pixels[16:]
	}
	// The last one to three pixels, when width*height is not a multiple of 4.
	for len(pixels) >= 4 {
		gray(pixels[:4:4])
		pixels = pixels[4:]
	}
	return sandstream.Keep, nil
}

// gray turns one RGBA pixel gray. Passing it exactly four bytes (p[:4:4])
// lets the compiler drop the bounds checks on p[0] to p[2]; it inlines the
// call, too.
func gray(p []byte) {
	luma := (rWeight*uint32(p[0]) + gWeight*uint32(p[1]) + bWeight*uint32(p[2]) + 128) >> 8
	p[0], p[1], p[2] = byte(luma), byte(luma), byte(luma)
	// Alpha (p[3]) is kept.
}

// init hands the effect to the SDK; it runs when the host starts the module.
// Having both ProcessAudio and ProcessVideo, it takes both streams.
func init() {
	sandstream.Export(&GainGrayscale{gain: 1})
}

// main is never called (the module is a library), but Go wants one.
func main() {}
