use crate::common::*;
use sandstream::guest::{CacheOutcome, CompileCache, GuestProgram, new_engine};

#[test]
fn second_load_comes_from_the_cache_and_a_corrupt_entry_is_replaced() {
    let dir = scratch("cache");
    let cache = CompileCache::new(dir.join("cache"));
    let engine = new_engine().unwrap();
    let first = GuestProgram::load(&engine, &guest("passthrough"), Some(&cache)).unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Miss);
    let second = GuestProgram::load(&engine, &guest("passthrough"), Some(&cache)).unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);

    let entries: Vec<_> = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    std::fs::write(&entries[0], b"not a compiled component").unwrap();
    let third = GuestProgram::load(&engine, &guest("passthrough"), Some(&cache)).unwrap();
    assert_eq!(third.cache_outcome(), CacheOutcome::Miss, "recompiled");
    let fourth = GuestProgram::load(&engine, &guest("passthrough"), Some(&cache)).unwrap();
    assert_eq!(fourth.cache_outcome(), CacheOutcome::Hit, "and replaced");
}

#[test]
fn different_components_get_different_entries() {
    let dir = scratch("cache-keys");
    let cache = CompileCache::new(dir.join("cache"));
    let engine = new_engine().unwrap();
    GuestProgram::load(&engine, &guest("gain"), Some(&cache)).unwrap();
    let other = GuestProgram::load(&engine, &guest("grayscale"), Some(&cache)).unwrap();
    assert_eq!(other.cache_outcome(), CacheOutcome::Miss);
    assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 2);
}
