//! States kept as words — a deviation's status, a scan run's, a mail's
//! kind: each is an enum whose `as_str` is the one place its words are
//! written, the same words the database and the JSON have always held (no
//! migration). [`words!`] derives the rest from `as_str` and `ALL`:
//! `FromStr`, `Display`, `Serialize`, and comparison with a `&str`;
//! `store::states` maps them to text columns.

/// A word that is none of a state's words (read from a request or, were
/// the database written by hand, from a row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{word}` är ingen {what}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

/// `FromStr`, `Display`, `Serialize` and `== "word"` for a state enum with
/// `const ALL` and `fn as_str(self) -> &'static str`; `$what` names the
/// state in [`UnknownWord`].
macro_rules! words {
    ($t:ty, $what:literal) => {
        impl std::str::FromStr for $t {
            type Err = $crate::domain::state::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::domain::state::UnknownWord {
                        what: $what,
                        word: s.to_string(),
                    })
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

pub(crate) use words;
