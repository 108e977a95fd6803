use std::str::FromStr;

/// The user's key/value configuration (`--set key=value` and the config
/// file's `[config]` table).
#[derive(Debug, Clone, Default)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Wraps the pairs the host sent.
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Self { entries }
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` parsed as `T`, or `default` when it is not set.
    ///
    /// # Errors
    /// A message naming the key and the bad value when it does not parse.
    pub fn get_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => parse(key, raw),
        }
    }

    /// `key` parsed as `T`; an error when it is missing.
    ///
    /// # Errors
    /// A message when the key is missing or its value does not parse.
    pub fn require<T: FromStr>(&self, key: &str) -> Result<T, String> {
        match self.get(key) {
            None => Err(format!(
                "missing required setting `{key}` (pass --set {key}=VALUE)"
            )),
            Some(raw) => parse(key, raw),
        }
    }

    /// All pairs, in the order the host sent them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn parse<T: FromStr>(key: &str, raw: &str) -> Result<T, String> {
    raw.trim().parse().map_err(|_| {
        format!(
            "setting `{key}`: cannot read {raw:?} as {}",
            short_type_name::<T>()
        )
    })
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}
