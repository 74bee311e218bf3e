use std::process::ExitCode;

use clap::Parser;
use test_analytics::config::Config;
use test_analytics::{run, telemetry};

// Every request allocates a few dozen small buffers across threads; mimalloc
// serves those faster than glibc's allocator and keeps the heap compact.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // A `.env` file is optional; real environment variables take precedence.
    dotenvy::dotenv().ok();
    let config = Config::parse();

    let logs = match telemetry::init(&config.log_level) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("invalid LOG_LEVEL {:?}: {error}", config.log_level);
            return ExitCode::from(2);
        }
    };

    let exit = match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "exiting");
            ExitCode::FAILURE
        }
    };
    // Every line logged so far reaches stdout before the process ends.
    drop(logs);
    exit
}
