//! The `kpidb` binary: parse the command line and hand it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kpidb::cli::Cli::parse();
    quiet_caught_upload_panic();
    // RUST_LOG overrides, e.g. RUST_LOG=kpidb=debug to see every refused statement.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("kpidb=info,warn"))
        .init();
    // Every thread that plans or runs SQL gets a large stack (kpidb::THREAD_STACK).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(kpidb::THREAD_STACK)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let main = std::thread::Builder::new()
        .name("kpidb".into())
        .stack_size(kpidb::THREAD_STACK)
        .spawn(move || runtime.block_on(kpidb::cli::run(cli)));
    let result = match main.map(|thread| thread.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`kpidb … | head`): nothing more to say, as Unix tools do.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().trim_end());
            ExitCode::FAILURE
        }
    }
}

/// Delta Lake aborts a data-file upload that failed through object_store's
/// `BufWriter::abort`, which panics by design when the upload had begun completing;
/// Delta Lake catches that panic and the write ends as an error naming the file. Keep
/// that one caught panic off the terminal; every other panic prints as usual.
fn quiet_caught_upload_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let caught = info.location().is_some_and(|l| {
            l.file().contains("object_store") && l.file().ends_with("buffered.rs")
        }) && info.payload().downcast_ref::<&str>() == Some(&"Already shut down");
        if !caught {
            default(info);
        }
    }));
}
