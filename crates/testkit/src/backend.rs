//! The backend a test runs on: the embedded store (a path in the test's directory), or,
//! inside [`on_postgres`], a new schema of the test binary's shared PostgreSQL cluster
//! ([`crate::pg::shared`]). The suites that hold for both (bad inputs, the error catalog,
//! checkpoints, fast appends, ...) make their stores with [`store_at`] and run each test
//! twice with [`both_backends!`](crate::both_backends).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a test's stores live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Embedded) };
}

impl Backend {
    /// The backend of this thread's test.
    pub fn current() -> Backend {
        BACKEND.with(Cell::get)
    }
}

/// Runs `test` with every store it makes in PostgreSQL. Without PostgreSQL it says so and
/// returns (under `CI=true` it fails, as [`crate::pg::Cluster::start`] does).
pub fn on_postgres(test: impl FnOnce()) {
    if crate::pg::shared().is_none() {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BACKEND.with(|b| b.set(Backend::Embedded));
        }
    }
    let _reset = Reset;
    BACKEND.with(|b| b.set(Backend::Postgres));
    test();
}

/// A store that does not exist yet, named `name`: `dir/name` on the embedded backend, a new
/// schema (unique in this process) on PostgreSQL.
pub fn store_at(dir: &Path, name: &str) -> PathBuf {
    match Backend::current() {
        Backend::Embedded => dir.join(name),
        Backend::Postgres => {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let cluster = crate::pg::shared().expect("on_postgres started the cluster");
            let schema = format!(
                "t{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            PathBuf::from(cluster.url(&schema))
        }
    }
}

fn is_url(store: &Path) -> bool {
    store
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Copies the store `from` into the new store `to`, keeping every record: the directory
/// copied for an embedded store, `accord copy` for a database one.
pub fn copy_store(from: &Path, to: &Path) {
    if is_url(from) || is_url(to) {
        crate::checked(crate::command().arg("copy").arg(from).arg(to), &["copy"]);
    } else {
        crate::copy_dir(from, to);
    }
}

/// Removes a store: its directory, or its schema.
pub fn remove_store(store: &Path) {
    if is_url(store) {
        let url = store.to_str().unwrap_or_default();
        let schema = url.rsplit("schema=").next().unwrap_or_default();
        let cluster = crate::pg::shared().expect("a database store is in the shared cluster");
        cluster
            .client()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .expect("drop the store's schema");
    } else {
        std::fs::remove_dir_all(store).expect("remove the store");
    }
}

/// Runs each test of the block twice: as written, in a module `embedded`, and in a module
/// `on_postgres`, inside [`on_postgres`] (so every store it makes with [`store_at`],
/// [`crate::temp_store`] or [`crate::sample_store`] is a PostgreSQL ledger).
#[macro_export]
macro_rules! both_backends {
    ($( $(#[$meta:meta])* fn $name:ident() $body:block )*) => {
        mod embedded {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* fn $name() $body )*
        }
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* fn $name() { $crate::on_postgres(|| $body) } )*
        }
    };
}
