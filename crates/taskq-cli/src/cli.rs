//! The command line: global options and the subcommands.

use clap::{Parser, Subcommand};

use crate::commands;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the database failed or refused the operation
  2  bad usage or invalid input (arguments, options, payloads)
  3  no task with that id
  4  the task is not in a state that allows the operation, or another
     task holds the unique key it would take
  5  the database cannot be reached, opened or written, is not a database,
     or has a schema this taskq cannot use
  130  interrupted by Ctrl-C (bulk says what it committed)

Examples:
  taskq enqueue email '{\"to\": \"ada@example.com\"}'
  taskq stats
  taskq cancel 42
  taskq pause email
  taskq schedule add nightly report --cron '0 3 * * *' --zone Europe/Berlin
  taskq limit set charge --concurrency 5 --rate 20/1s
  taskq work email -- ./send-email.sh
  taskq completions bash > ~/.local/share/bash-completion/completions/taskq
  taskq --database postgres://app@db.internal/app list --state failed";

/// Operate durable task queues from the shell: enqueue tasks, inspect and
/// administer them, and run a command for each task as a worker.
#[derive(Debug, Parser)]
#[command(name = "taskq", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The database: sqlite://PATH (or just a file path) for an embedded
    /// SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DB, optionally
    /// with ?schema=NAME (default schema: taskq). Without it, the SQLite
    /// file taskq.db in the current directory, created if needed.
    #[arg(
        long,
        short = 'd',
        env = "TASKQ_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://taskq.db",
        global = true
    )]
    pub database: String,

    /// Print JSON for scripts instead of tables for people.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Migrate(commands::migrate::Args),
    Enqueue(commands::enqueue::Args),
    Bulk(commands::bulk::Args),
    Len(commands::len::Args),
    Stats(commands::stats::Args),
    List(commands::list::Args),
    Show(commands::show::Args),
    Graph(commands::graph::Args),
    Retry(commands::retry::Args),
    Cancel(commands::cancel::Args),
    Pause(commands::pause::Args),
    Resume(commands::resume::Args),
    Delete(commands::delete::Args),
    Purge(commands::purge::Args),
    RequeueExpired(commands::requeue_expired::Args),
    Schedule(commands::schedule::Args),
    Limit(commands::limit::Args),
    Work(commands::work::Args),
    Dashboard(commands::dashboard::Args),
    Completions(commands::completions::Args),
    Man(commands::man::Args),
}

impl Command {
    /// Whether the command only reads, and so must create nothing.
    pub fn only_reads(&self) -> bool {
        match self {
            Command::Schedule(args) => args.only_reads(),
            Command::Limit(args) => args.only_reads(),
            _ => matches!(
                self,
                Command::Len(_)
                    | Command::Stats(_)
                    | Command::List(_)
                    | Command::Show(_)
                    | Command::Graph(_)
            ),
        }
    }

    /// The queue's settings for the command.
    pub fn queue_config(&self) -> taskq::QueueConfig {
        let mut config = taskq::QueueConfig::default();
        if let Command::Work(args) = self {
            config.poll_interval = args.poll_interval;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
