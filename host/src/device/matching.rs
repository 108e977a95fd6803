//! How a name the user typed picks a device: a whole-name match first,
//! then any name containing it; case never matters.

/// The indices of `candidates` that `wanted` means, given each candidate's
/// names (an id, a description…): those with a name equal to it, else those
/// with a name containing it.
pub fn matching<T>(candidates: &[T], wanted: &str, names: impl Fn(&T) -> Vec<&str>) -> Vec<usize> {
    let wanted = wanted.to_lowercase();
    let matches = |whole: bool| -> Vec<usize> {
        (0..candidates.len())
            .filter(|&i| {
                names(&candidates[i]).iter().any(|name| {
                    let name = name.to_lowercase();
                    if whole {
                        name == wanted
                    } else {
                        name.contains(&wanted)
                    }
                })
            })
            .collect()
    };
    let whole = matches(true);
    if whole.is_empty() {
        matches(false)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::matching;

    #[test]
    fn whole_names_win_over_parts_and_case_is_ignored() {
        let devices = [("mic", "USB Mic"), ("mic_2", "Mic 2"), ("spk", "Speakers")];
        fn names<'a>(d: &'a (&str, &str)) -> Vec<&'a str> {
            vec![d.0, d.1]
        }
        assert_eq!(matching(&devices, "MIC", names), vec![0]);
        assert_eq!(matching(&devices, "mic 2", names), vec![1]);
        assert_eq!(matching(&devices, "usb", names), vec![0]);
        assert_eq!(matching(&devices, "mi", names), vec![0, 1]);
        assert!(matching(&devices, "camera", names).is_empty());
    }
}
