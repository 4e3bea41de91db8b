//! The `orchestrator` binary: `orchestrator hook …` runs the Claude Code adapter
//! ([`orchestrator::hook`]); otherwise it reads the configuration, sets up logging and runs the
//! service until SIGTERM/SIGINT (long-lived requests end, running writes finish, then it
//! returns).

use std::process::ExitCode;

use orchestrator::config::Config;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "hook") {
        return orchestrator::hook::main(std::env::args_os().skip(1));
    }
    let (config, log_filter) = match Config::from_env_and_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("orchestrator: {e}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::new().parse_filters(&log_filter).init();

    let result = actix_web::rt::System::new().block_on(async move {
        let server = orchestrator::start(config).await?;
        log::info!("listening on http://{}", server.addr);
        server.serve_until_signalled().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    match result {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            eprintln!("orchestrator: {e}");
            ExitCode::FAILURE
        }
    }
}
