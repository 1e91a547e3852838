//! The `kpidb` binary: parse the command line and hand it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kpidb::cli::Cli::parse();
    // RUST_LOG overrides, e.g. RUST_LOG=kpidb=debug to see every refused statement.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("kpidb=info,warn"))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kpidb::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().trim_end());
            ExitCode::FAILURE
        }
    }
}
