//! The `accord` binary: a thin shell around the `cli` crate.

fn main() {
    std::process::exit(cli::run(env!("CARGO_PKG_VERSION")));
}
