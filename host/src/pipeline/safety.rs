//! The last word on audio before it leaves the host: no guest can send
//! NaN/Inf downstream or blast the listener past full scale.

use crate::metrics::Counters;
use std::sync::atomic::Ordering::Relaxed;

/// Replaces NaN/Inf with silence and, with `limiter`, clamps to ±1.0 full
/// scale; counts both.
pub fn make_safe(samples: &mut [f32], limiter: bool, counters: &Counters) {
    let (mut nonfinite, mut limited) = (0u64, 0u64);
    for sample in samples.iter_mut() {
        if !sample.is_finite() {
            *sample = 0.0;
            nonfinite += 1;
        } else if limiter && sample.abs() > 1.0 {
            *sample = sample.clamp(-1.0, 1.0);
            limited += 1;
        }
    }
    if nonfinite > 0 {
        counters.nonfinite_samples.fetch_add(nonfinite, Relaxed);
    }
    if limited > 0 {
        counters.limited_samples.fetch_add(limited, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonfinite_samples_are_silenced_and_loud_ones_limited() {
        let counters = Counters::default();
        let mut samples = [f32::NAN, 2.0, -3.0, 0.5, f32::INFINITY];
        make_safe(&mut samples, true, &counters);
        assert_eq!(samples, [0.0, 1.0, -1.0, 0.5, 0.0]);
        let report = counters.report();
        assert_eq!((report.nonfinite_samples, report.limited_samples), (2, 2));

        let mut loud = [2.0f32];
        make_safe(&mut loud, false, &counters);
        assert_eq!(loud, [2.0]);
    }
}
