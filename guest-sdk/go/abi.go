//go:build wasip1

package sandstream

// The WebAssembly side of the package: the functions the host calls (the
// exports of the mapped worlds, in the canonical ABI's core signatures, as
// `sandstream bindings --lang c` shows them in effect.c), the one it
// provides (log), and the memory they pass things in.
//
// Memory the host writes into, and why it is not the Go heap
// -----------------------------------------------------------
//
// The host passes a list (the configuration) by first calling the module's
// `cabi_realloc` to get room for it, once per string and once for the
// array. Wasmtime forbids a module to call any import from inside
// `cabi_realloc` or a `cabi_post_*` function ("cannot leave component
// instance"), and in Go almost anything may call an import: an allocation
// may start a garbage collection, which reads the clock (a WASI import) and
// may run other goroutines; even a function's stack check may enter the
// scheduler. That is how bindings whose cabi_realloc allocated on the Go
// heap trapped.
//
// So cabiRealloc below is a bump allocator over argArena, a fixed array in
// the module's data (not the Go heap): it allocates nothing, calls nothing
// and, being //go:nosplit, has no stack check, so it cannot reach the
// scheduler or the collector. The export that receives the arguments
// (configure) copies them into Go strings, where a collection is harmless,
// and empties the arena before it returns (an export taking a list in a
// future world, such as state.restore, would do the same). No `cabi_post_*` function is
// exported at all: an error message handed to the host lives in lastError,
// a Go slice kept until the next call (the Go heap never moves objects), so
// there is nothing to free after a call, and nothing runs there.
//
// The WASI preview-1 adapter that `sandstream componentize` adds also needs
// memory of the module, twice and for good (its stack and its state, 64 KiB
// each), and asks for it from inside a WASI call, possibly in the middle of
// the runtime's own work. wit-component hands it `cabi_realloc_adapter`
// when the module exports one: it is the same bump allocator over a second
// array, never emptied.
//
// Runtime initialization
// ----------------------
//
// A -buildmode=c-shared module exports `_initialize`, which starts the Go
// runtime and runs the init functions (and so the effect's Export call).
// wit-component (0.258, in `sandstream componentize`) calls it from the
// component's start, before the host can call any export. Were it not
// called, the first export would stop with "wasmexport function called
// before runtime initialization" instead of running on an uninitialized
// runtime (the compiler puts that check in every export).

import (
	"errors"
	"runtime"
	"strconv"
	"unsafe"
)

const (
	// argArenaSize bounds what the host passes in one call: the whole
	// configuration (16 bytes per setting plus its key and value).
	argArenaSize = 1 << 20
	// adapterArenaSize is the WASI adapter's stack and state, with room to
	// spare.
	adapterArenaSize = 192 << 10
	// outOfMemory is an address no memory reaches: the host traps on it.
	outOfMemory = 0xffff_fff8
)

var (
	argArena     [argArenaSize / 8]uint64 // uint64: 8-byte aligned
	argUsed      uintptr                  // bytes of argArena handed out
	argAsked     uint64                   // bytes asked for since it was emptied
	argOverflow  bool                     // whether some did not fit
	adapterArena [adapterArenaSize / 8]uint64
	adapterUsed  uintptr
)

//go:wasmexport cabi_realloc
//go:nosplit
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	base := unsafe.Pointer(&argArena)
	argAsked += uint64(newSize)
	ptr, ok := bump(base, argArenaSize, &argUsed, align, newSize)
	if !ok {
		// Too much configuration. Hand out the start of the arena again:
		// what the host writes there is garbage, and configure reports
		// the overflow instead of reading it. (One string larger than the
		// whole arena cannot be placed at all: the host traps.)
		argOverflow = true
		if newSize > argArenaSize {
			return outOfMemory
		}
		return uint32(uintptr(base))
	}
	// Growing an earlier allocation (the ABI allows it; wasmtime never
	// does it): copy the old bytes, which lie before the new ones.
	if from := uintptr(oldPtr) - uintptr(base); oldSize > 0 && from < argArenaSize {
		to := uintptr(ptr) - uintptr(base)
		for i := uintptr(0); i < uintptr(min(oldSize, newSize)); i++ {
			*(*byte)(unsafe.Add(base, to+i)) = *(*byte)(unsafe.Add(base, from+i))
		}
	}
	return ptr
}

//go:wasmexport cabi_realloc_adapter
//go:nosplit
func cabiReallocAdapter(oldPtr, oldSize, align, newSize uint32) uint32 {
	ptr, ok := bump(unsafe.Pointer(&adapterArena), adapterArenaSize, &adapterUsed, align, newSize)
	if !ok || oldSize > 0 { // the adapter only ever allocates
		return outOfMemory
	}
	return ptr
}

// bump hands out size bytes of the arena at base, aligned to align, after
// the *used bytes already handed out.
//
//go:nosplit
func bump(base unsafe.Pointer, arenaSize uintptr, used *uintptr, align, size uint32) (uint32, bool) {
	a := uintptr(align)
	if a == 0 || a&(a-1) != 0 {
		a = 8
	}
	start := (uintptr(base)+*used+a-1)&^(a-1) - uintptr(base)
	if start > arenaSize || uintptr(size) > arenaSize-start {
		return 0, false
	}
	*used = start + uintptr(size)
	return uint32(uintptr(base) + start), true
}

// argBytes is a view of n bytes the host wrote at ptr, within argArena.
func argBytes(ptr, n uint32) ([]byte, error) {
	base := uintptr(unsafe.Pointer(&argArena))
	offset := uintptr(ptr) - base
	if uintptr(ptr) < base || offset > argArenaSize || uintptr(n) > argArenaSize-offset {
		return nil, errors.New("the host passed " + itoa(n) + " bytes at " + itoa(ptr) + ", outside the memory it was given")
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&argArena)), argArenaSize)[offset : offset+uintptr(n)], nil
}

// takeConfig copies the configuration the host wrote into argArena (a list
// of (key, value) string pairs: four u32 per pair, pointer and length of
// each) into Go strings, then empties the arena.
func takeConfig(ptr, count uint32) (Config, error) {
	defer func() { argUsed, argAsked, argOverflow = 0, 0, false }()
	if argOverflow {
		return Config{}, errors.New("the configuration takes " + itoa(argAsked) + " bytes, more than the Go SDK's limit of " + itoa(argArenaSize))
	}
	pairs, err := argBytes(ptr, count*16)
	if err != nil {
		return Config{}, err
	}
	str := func(at []byte) (string, error) {
		b, err := argBytes(u32(at), u32(at[4:]))
		return string(b), err // string() copies
	}
	config := Config{entries: make([]setting, count)}
	for i := range config.entries {
		e := &config.entries[i]
		pair := pairs[16*i:]
		if e.key, err = str(pair); err != nil {
			return Config{}, err
		}
		if e.value, err = str(pair[8:]); err != nil {
			return Config{}, err
		}
	}
	return config, nil
}

// The return area: a `result<T, string>` is returned as a pointer to its
// tag (byte 0; 0 ok, 1 error) followed at byte 4 by T or by the string's
// pointer and length. The host reads it as soon as the call returns.
var ret [5]uint32

func returned() uint32 { return uint32(uintptr(unsafe.Pointer(&ret))) }

func ok(payload ...uint32) uint32 {
	ret[0] = 0
	copy(ret[1:], payload)
	return returned()
}

// lastError holds the message of a failed call until the next call.
var lastError []byte

func fail(err error) uint32 {
	lastError = []byte(err.Error())
	ret[0] = 1
	ret[1] = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(lastError))))
	ret[2] = uint32(len(lastError))
	return returned()
}

func address[T any](s []T) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(s)))) }

// u32 reads a little-endian u32, as the host writes them.
func u32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// itoa writes a number in decimal (this package does without fmt).
func itoa[T ~int | ~uint8 | ~uint32 | ~uint64](n T) string { return strconv.FormatUint(uint64(n), 10) }

// ---- sandstream:av/log ------------------------------------------------------

//go:wasmimport sandstream:av/log@0.1.0 log
//go:noescape
func hostLog(level uint32, message string)

// ---- sandstream:av/setup ----------------------------------------------------

var (
	audioFormat *AudioFormat
	videoFormat *VideoFormat
)

//go:wasmexport sandstream:av/setup@0.1.0#configure
func exportConfigure(configPtr, configLen uint32,
	hasAudio, sampleRate, channels, blockFrames uint32,
	hasVideo, width, height uint32, fps float64) uint32 {
	config, err := takeConfig(configPtr, configLen)
	if err != nil {
		return fail(err)
	}
	var formats Formats
	if hasAudio != 0 {
		formats.Audio = &AudioFormat{SampleRate: sampleRate, Channels: channels, BlockFrames: blockFrames}
	}
	if hasVideo != 0 {
		formats.Video = &VideoFormat{Width: width, Height: height, FPS: fps}
	}
	switch {
	case exported == nil:
		return fail(errors.New("no effect: call sandstream.Export(effect) in an init function"))
	case formats.Audio != nil && audioEffect == nil:
		return fail(errors.New("the effect has no ProcessAudio method, but the host sends it audio"))
	case formats.Video != nil && videoEffect == nil:
		return fail(errors.New("the effect has no ProcessVideo method, but the host sends it video"))
	}
	if err := exported.Configure(config, formats); err != nil {
		return fail(err)
	}
	audioFormat, videoFormat = formats.Audio, formats.Video
	return ok()
}

// ---- sandstream:av/mapped-audio and mapped-video ----------------------------
//
// prepare allocates one buffer per stream on the Go heap, keeps it in a
// package variable and pins it (the collector neither frees nor moves it),
// and announces it for input and output: the effect works in place. Every
// module exports both interfaces; `sandstream componentize` uses those of
// the world it is given and ignores the others.

type mapped[T any] struct {
	buffer []T
	pin    runtime.Pinner
}

// prepare allocates n elements and returns the `buffers` record.
func (m *mapped[T]) prepare(n uint64, what string) uint32 {
	bytes := n * uint64(unsafe.Sizeof(*new(T)))
	if bytes == 0 || bytes > 1<<31 {
		return fail(errors.New("cannot make a " + what + " buffer of " + itoa(bytes) + " bytes"))
	}
	m.pin.Unpin()
	m.buffer = make([]T, n)
	m.pin.Pin(&m.buffer[0])
	at := address(m.buffer)
	return ok(at, uint32(bytes), at, uint32(bytes)) // input and output: one region
}

// done returns a process call's outcome.
func done(outcome Outcome, err error) uint32 {
	switch {
	case err != nil:
		return fail(err)
	case outcome > Drop:
		return fail(errors.New("unknown outcome " + itoa(outcome) + " (want sandstream.Keep or sandstream.Drop)"))
	}
	return ok(uint32(outcome))
}

var audioBuffer mapped[float32]

//go:wasmexport sandstream:av/mapped-audio@0.1.0#prepare
func exportAudioPrepare() uint32 {
	if audioFormat == nil {
		return fail(errors.New("the effect was configured without an audio stream"))
	}
	return audioBuffer.prepare(uint64(audioFormat.BlockFrames)*uint64(audioFormat.Channels), "audio")
}

//go:wasmexport sandstream:av/mapped-audio@0.1.0#process
func exportAudioProcess(timestampNs, firstFrame uint64, sampleRate, channels, samples uint32) uint32 {
	if int(samples) > len(audioBuffer.buffer) || audioEffect == nil {
		return fail(errors.New(itoa(samples) + " samples for a buffer of " + itoa(len(audioBuffer.buffer))))
	}
	info := AudioInfo{TimestampNs: timestampNs, FirstFrame: firstFrame, SampleRate: sampleRate, Channels: channels}
	return done(audioEffect.ProcessAudio(info, audioBuffer.buffer[:samples:samples]))
}

var videoBuffer mapped[byte]

//go:wasmexport sandstream:av/mapped-video@0.1.0#prepare
func exportVideoPrepare() uint32 {
	if videoFormat == nil {
		return fail(errors.New("the effect was configured without a video stream"))
	}
	return videoBuffer.prepare(uint64(videoFormat.Width)*uint64(videoFormat.Height)*4, "video")
}

//go:wasmexport sandstream:av/mapped-video@0.1.0#process
func exportVideoProcess(timestampNs, index uint64, width, height uint32) uint32 {
	size := uint64(width) * uint64(height) * 4
	if size > uint64(len(videoBuffer.buffer)) || videoEffect == nil {
		return fail(errors.New("a " + itoa(width) + "x" + itoa(height) + " frame for a buffer of " + itoa(len(videoBuffer.buffer)) + " bytes"))
	}
	info := VideoInfo{TimestampNs: timestampNs, Index: index, Width: width, Height: height}
	return done(videoEffect.ProcessVideo(info, videoBuffer.buffer[:size:size]))
}
