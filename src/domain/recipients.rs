//! Who a mail goes to, as stored on a deviation and an outbox row (JSON).
//! `mail::routing` decides it; `store::outbox` keeps it. The value lives
//! here so neither has to import the other.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipients {
    pub to: String,
    pub cc: Vec<String>,
    /// Why, in Swedish, for `svu-vakt routes`.
    #[serde(default)]
    pub via: String,
}

impl Recipients {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Recipients {
        serde_json::from_str(s).unwrap_or(Recipients {
            to: String::new(),
            cc: Vec::new(),
            via: String::new(),
        })
    }
}
