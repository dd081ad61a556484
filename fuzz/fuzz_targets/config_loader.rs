//! Any text as the configuration file: an error or a configuration, never
//! a panic. The patient key comes from the environment, so nothing is
//! written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use svu_vakt::config::{Config, Overrides};

fuzz_target!(|data: &[u8]| {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| std::env::set_var("SVU_VAKT_PATIENT_KEY", "fuzz-patient-key-0123456789abcdef"));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let overrides = Overrides::default();
    if let Ok(config) = Config::from_toml(text, "fuzz.toml", &overrides) {
        assert!(config.pool_size > 0);
    }
});
