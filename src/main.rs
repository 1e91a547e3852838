//! The `kpidb` binary: the command and its process are [`kpidb::cli::main`].

fn main() -> std::process::ExitCode {
    kpidb::cli::main()
}
