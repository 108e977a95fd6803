//! The audio crossfade of a hot swap: for a moment both guests process the
//! same input, and the old one's output fades out under the new one's.

/// A swapped-out instance still running while its output fades out.
pub struct FadeOut<I> {
    pub instance: I,
    /// Frames already faded.
    pub done: u64,
}

/// Mixes `old` into `new` (interleaved, `channels` per frame), the old
/// output's weight falling linearly from `1 - done / total` to zero over
/// `total` frames. Returns the frames mixed.
pub fn mix(new: &mut [f32], old: &[f32], channels: usize, done: u64, total: u64) -> u64 {
    let channels = channels.max(1);
    let total = total.max(1) as f32;
    for (frame, (new, old)) in new
        .chunks_mut(channels)
        .zip(old.chunks(channels))
        .enumerate()
    {
        let weight = ((done + frame as u64) as f32 / total).min(1.0);
        for (n, o) in new.iter_mut().zip(old) {
            *n = o * (1.0 - weight) + *n * weight;
        }
    }
    (new.len() / channels) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_output_fades_linearly_across_blocks() {
        let old = [1.0f32; 8];
        let mut first = [0.0f32; 8];
        let mixed = mix(&mut first, &old, 2, 0, 8);
        assert_eq!(mixed, 4);
        assert_eq!(first, [1.0, 1.0, 0.875, 0.875, 0.75, 0.75, 0.625, 0.625]);
        let mut second = [0.0f32; 8];
        mix(&mut second, &old, 2, 4, 8);
        assert_eq!(second, [0.5, 0.5, 0.375, 0.375, 0.25, 0.25, 0.125, 0.125]);
        let mut after = [0.0f32; 2];
        mix(&mut after, &old, 2, 8, 8);
        assert_eq!(after, [0.0, 0.0]);
    }
}
