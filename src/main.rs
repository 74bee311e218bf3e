use std::process::ExitCode;

use clap::Parser;
use test_analytics::config::Config;
use test_analytics::{run, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    // A `.env` file is optional; real environment variables take precedence.
    dotenvy::dotenv().ok();
    let config = Config::parse();

    if let Err(error) = telemetry::init(&config.log_level) {
        eprintln!("invalid LOG_LEVEL {:?}: {error}", config.log_level);
        return ExitCode::from(2);
    }

    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "exiting");
            ExitCode::FAILURE
        }
    }
}
