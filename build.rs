//! Rebuilds the crate when a migration is added: `embed_migrations!` reads
//! the migration directories at compile time, and cargo does not otherwise
//! see a new directory under them (an added migration left out of an
//! incremental build, silently).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
