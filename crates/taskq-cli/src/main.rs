//! `taskq`: operate durable task queues from the shell. See `taskq --help`.

mod cli;
mod commands;
mod failure;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use failure::Failure;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "taskq: internal error (please report it): {info}"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "taskq: could not start: {error}");
            return ExitCode::from(failure::OTHER);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_quiet() => ExitCode::SUCCESS,
        Err(failure) => {
            let mut stderr = std::io::stderr();
            let _ = if json {
                writeln!(stderr, "{}", failure.json())
            } else {
                writeln!(stderr, "taskq: {}", failure.message)
            };
            ExitCode::from(failure.code)
        }
    }
}

/// A command line clap could not parse: its own message, or under
/// `--json` the same as a JSON error object; help and version as usual.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args().skip(1).any(|arg| arg == "--json");
    if !wants_json
        || matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        )
    {
        error.exit();
    }
    let failure = Failure::invalid(error.render().to_string().trim());
    let _ = writeln!(std::io::stderr(), "{}", failure.json());
    ExitCode::from(failure.code)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let out = output::Output { json: cli.json };
    // Commands about taskq itself need no database.
    let command = match cli.command {
        Command::Completions(args) => return commands::completions::run(args, &out),
        Command::Man(args) => return commands::man::run(args, &out),
        command => command,
    };
    // Commands that only look create nothing: no SQLite file, no schema.
    let options = taskq::ConnectOptions {
        create: !command.only_reads(),
        config: command.queue_config(),
    };
    let queue = taskq::Queue::connect_with(&cli.database, options).await?;
    let done = match command {
        Command::Migrate(args) => commands::migrate::run(args, &queue, &out).await,
        Command::Enqueue(args) => commands::enqueue::run(args, &queue, &out).await,
        Command::Bulk(args) => commands::bulk::run(args, &queue, &out).await,
        Command::Len(args) => commands::len::run(args, &queue, &out).await,
        Command::Stats(args) => commands::stats::run(args, &queue, &out).await,
        Command::List(args) => commands::list::run(args, &queue, &out).await,
        Command::Show(args) => commands::show::run(args, &queue, &out).await,
        Command::Graph(args) => commands::graph::run(args, &queue, &out).await,
        Command::Retry(args) => commands::retry::run(args, &queue, &out).await,
        Command::Cancel(args) => commands::cancel::run(args, &queue, &out).await,
        Command::Pause(args) => commands::pause::run(args, &queue, &out).await,
        Command::Resume(args) => commands::resume::run(args, &queue, &out).await,
        Command::Delete(args) => commands::delete::run(args, &queue, &out).await,
        Command::Purge(args) => commands::purge::run(args, &queue, &out).await,
        Command::RequeueExpired(args) => commands::requeue_expired::run(args, &queue, &out).await,
        Command::Schedule(args) => commands::schedule::run(args, &queue, &out).await,
        Command::Limit(args) => commands::limit::run(args, &queue, &out).await,
        Command::Work(args) => commands::work::run(args, queue.clone(), &out).await,
        Command::Dashboard(args) => {
            commands::dashboard::run(args, queue.clone(), &cli.database, &out).await
        }
        // Answered above, before connecting; the same answer here.
        Command::Completions(args) => commands::completions::run(args, &out),
        Command::Man(args) => commands::man::run(args, &out),
    };
    // Wake-ups for other processes' workers go out before the process
    // ends, even when the command failed after an enqueue.
    let flushed = queue.flush().await;
    done?;
    flushed?;
    out.flush()
}
