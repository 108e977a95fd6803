// Package sandstream writes Sandstream effects in Go.
//
// An effect is one type with a Configure method and ProcessAudio and/or
// ProcessVideo, handed to Export from an init function:
//
//	type Gain struct{ gain float32 }
//
//	func (g *Gain) Configure(config sandstream.Config, formats sandstream.Formats) (err error) {
//		g.gain, err = config.Float32("gain", 1)
//		return err
//	}
//
//	func (g *Gain) ProcessAudio(info sandstream.AudioInfo, samples []float32) (sandstream.Outcome, error) {
//		for i := range samples {
//			samples[i] *= g.gain
//		}
//		return sandstream.Keep, nil
//	}
//
//	func init() { sandstream.Export(&Gain{}) }
//
//	func main() {}
//
// Build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared, then
// `sandstream componentize core.wasm --world audio-effect-mapped` (or
// video-effect-mapped, av-effect-mapped): see examples/gain-go/build.sh.
//
// The package implements the mapped worlds only: blocks and frames are
// written by the host into buffers this package keeps in the module's
// memory, and the effect processes them in place, with no allocation and no
// copy per call. All the WebAssembly detail (export names, the canonical
// ABI, memory the host writes into) stays in abi.go.
//
// An effect may allocate, use maps, fmt and the rest of the standard
// library: the garbage collector may run during any call and that is
// harmless. Allocating in ProcessAudio/ProcessVideo only costs time, on a
// deadline. A panic prints its stack trace to the host log (stderr) and
// traps: the host counts a fault and restarts the effect.
package sandstream

import "strconv"

// Effect is what Export takes: Configure, plus ProcessAudio (see
// AudioProcessor) and/or ProcessVideo (see VideoProcessor) for the streams
// its world processes.
type Effect interface {
	// Configure is called once, before any processing, with the user's
	// settings and the formats of the streams the effect will be sent. An
	// error is shown to the user and the host refuses to run.
	Configure(config Config, formats Formats) error
}

// AudioProcessor is an Effect of the audio-effect-mapped and av-effect-mapped
// worlds.
type AudioProcessor interface {
	// ProcessAudio processes one block of interleaved samples (nominal range
	// -1..1) in place. Return Drop to drop the block, or an error, which the
	// host treats like a fault of this call. The slice belongs to the SDK:
	// do not keep it after the call.
	ProcessAudio(info AudioInfo, samples []float32) (Outcome, error)
}

// VideoProcessor is an Effect of the video-effect-mapped and av-effect-mapped
// worlds.
type VideoProcessor interface {
	// ProcessVideo processes one RGBA8 frame (width*height*4 bytes, rows top
	// to bottom, no padding) in place. As with ProcessAudio, the slice must
	// not be kept after the call.
	ProcessVideo(info VideoInfo, pixels []byte) (Outcome, error)
}

// Export makes effect the module's effect. Call it once, from an init
// function: the host configures the effect right after the module starts.
func Export(effect Effect) {
	if effect == nil {
		panic("sandstream.Export: nil effect")
	}
	if exported != nil {
		panic("sandstream.Export: called twice")
	}
	exported = effect
	audioEffect, _ = effect.(AudioProcessor)
	videoEffect, _ = effect.(VideoProcessor)
}

var (
	exported    Effect
	audioEffect AudioProcessor
	videoEffect VideoProcessor
)

// AudioFormat is the format of the audio stream, fixed for the instance.
type AudioFormat struct {
	SampleRate uint32 // frames per second, e.g. 48000
	Channels   uint32 // interleaved channels per frame
	// BlockFrames is the number of frames per block the host usually sends
	// (the last block of a file may be shorter).
	BlockFrames uint32
}

// VideoFormat is the format of the video stream, fixed for the instance.
type VideoFormat struct {
	Width, Height uint32
	FPS           float64 // nominal frames per second of the source
}

// Formats are the streams the effect will be sent: nil when absent.
type Formats struct {
	Audio *AudioFormat
	Video *VideoFormat
}

// AudioInfo is the timing and format of one audio block.
type AudioInfo struct {
	TimestampNs uint64 // capture time of the first frame, host clock
	FirstFrame  uint64 // index of the first frame since the stream started
	SampleRate  uint32
	Channels    uint32
}

// VideoInfo is the timing and format of one video frame.
type VideoInfo struct {
	TimestampNs uint64 // capture time, host clock
	Index       uint64 // index of the frame since the stream started
	Width       uint32
	Height      uint32
}

// Outcome is what a process call did with its block or frame.
type Outcome uint8

const (
	Keep Outcome = iota // the buffer holds the processed data
	Drop                // drop this block or frame
)

// FormatFloat32 writes v as Rust's `{}` does ("0.3", "inf", "-inf", "NaN"),
// so messages read like those of effects written with the Rust SDK.
func FormatFloat32(v float32) string { return formatFloat(float64(v), 32) }

// FormatFloat64 is FormatFloat32 for float64.
func FormatFloat64(v float64) string { return formatFloat(v, 64) }

func formatFloat(v float64, bits int) string {
	switch s := strconv.FormatFloat(v, 'f', -1, bits); s {
	case "+Inf":
		return "inf"
	case "-Inf":
		return "-inf"
	default:
		return s // "NaN" and every finite value are already as in Rust
	}
}

// Log levels of the host's log.
type Level uint32

const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Log writes one line to the host's log, tagged with the guest's name.
// The host shows control characters escaped, and takes at most 50 lines a
// second and 256 KiB in all from a guest (stdout and stderr included).
func Log(level Level, message string) { hostLog(uint32(level), message) }

// Trace, Debug, Info, Warn and Error log at their level. They take a
// string, not a format, so that this package does not link fmt (a bigger
// module compiles slower on the host): use fmt.Sprintf where you need it.
func Trace(message string) { Log(LevelTrace, message) }
func Debug(message string) { Log(LevelDebug, message) }
func Info(message string)  { Log(LevelInfo, message) }
func Warn(message string)  { Log(LevelWarn, message) }
func Error(message string) { Log(LevelError, message) }
