//! The `accord` binary: a thin shell around the `cli` crate.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::run(env!("CARGO_PKG_VERSION")));
}
