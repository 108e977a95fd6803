//! Clock drift: two devices never run at exactly the same rate (the
//! original's delay grew 60 ms a minute). Before audio enters the playback
//! ring it goes through an adaptive resampler whose ratio a PI controller
//! sets from the ring's fill, so the fill — the output latency — stays at
//! its target over hours instead of creeping up (then dropping) or down
//! (then starving).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Adjustable as _, Async, FixedAsync, Indexing, PolynomialDegree, Resampler as _};

/// Largest correction: 1 %, far beyond real crystals (±100 ppm) and the
/// 0.5 % a test asks for.
const MAX_CORRECTION: f64 = 0.01;
/// Proportional gain, per second of fill error.
const KP: f64 = 0.5;
/// Integral gain: critically damped with `KP` (Ki = Kp²/4), settling in
/// a few seconds.
const KI: f64 = KP * KP / 4.0;
/// Time constant of the fill average, which irons out the saw-tooth of
/// callbacks and blocks.
const FILL_SMOOTHING_S: f64 = 0.5;

pub struct DriftCorrector {
    resampler: Async<f32>,
    channels: usize,
    rate: f64,
    target_frames: f64,
    average_fill: Option<f64>,
    integral: f64,
    correction: f64,
    /// Output of the last [`DriftCorrector::process`].
    out: Vec<f32>,
}

impl DriftCorrector {
    /// # Errors
    /// When the resampler cannot be made for these sizes.
    pub fn new(
        rate: u32,
        channels: usize,
        block_frames: usize,
        target_frames: usize,
    ) -> anyhow::Result<Self> {
        let resampler = Async::<f32>::new_poly(
            1.0,
            1.0 + 2.0 * MAX_CORRECTION,
            PolynomialDegree::Cubic,
            block_frames.max(1),
            channels,
            FixedAsync::Input,
        )?;
        let out = vec![0.0; resampler.output_frames_max() * channels];
        Ok(Self {
            resampler,
            channels,
            rate: f64::from(rate),
            target_frames: target_frames as f64,
            average_fill: None,
            integral: 0.0,
            correction: 0.0,
            out,
        })
    }

    /// The correction now applied (output/input rate − 1).
    pub fn correction(&self) -> f64 {
        self.correction
    }

    /// Feeds the ring's fill (frames), measured before each block. `steer`
    /// is false while the device is not playing normally (not started, or
    /// stalled), so a stall does not wind up the controller.
    pub fn observe(&mut self, fill_frames: usize, block_frames: usize, steer: bool) {
        if !steer {
            // Fills seen while not steering say nothing of the clocks.
            self.average_fill = None;
            return;
        }
        let dt = block_frames as f64 / self.rate;
        let fill = fill_frames as f64;
        let alpha = dt / (FILL_SMOOTHING_S + dt);
        let average = match self.average_fill {
            Some(avg) => avg + alpha * (fill - avg),
            None => fill,
        };
        self.average_fill = Some(average);
        // Seconds of audio above target: positive means too much latency,
        // so produce fewer output frames per input frame.
        let error = (average - self.target_frames) / self.rate;
        let limit = MAX_CORRECTION / KI;
        self.integral = (self.integral + error * dt).clamp(-limit, limit);
        self.correction =
            (-(KP * error + KI * self.integral)).clamp(-MAX_CORRECTION, MAX_CORRECTION);
        let _ = self
            .resampler
            .set_resample_ratio_relative(1.0 + self.correction, true);
    }

    /// Resamples one block of interleaved audio; returns the output.
    ///
    /// # Errors
    /// Only on a resampler bug (sizes are checked up front).
    pub fn process(&mut self, block: &[f32]) -> anyhow::Result<&[f32]> {
        let frames = block.len() / self.channels;
        let input = InterleavedSlice::new(block, self.channels, frames)?;
        let out_frames = self.out.len() / self.channels;
        let mut output = InterleavedSlice::new_mut(&mut self.out, self.channels, out_frames)?;
        let partial = (frames < self.resampler.input_frames_next()).then_some(frames);
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: partial,
            active_channels_mask: None,
        };
        let (_, produced) =
            self.resampler
                .process_into_buffer(&input, &mut output, Some(&indexing))?;
        Ok(&self.out[..produced * self.channels])
    }
}
