//! `taskq man`

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;
use crate::failure::Failure;
use crate::output::Output;

/// Print taskq's manual page (roff), or write a page for every command.
///
/// Without --dir, prints the page of taskq itself, to read with
/// `taskq man | man -l -`. With --dir, writes taskq.1 and a page for each
/// command (taskq-enqueue.1, taskq-schedule-add.1, ...) into that
/// directory, for packagers. Needs no database.
///
/// Examples:
///   taskq man | man -l -
///   taskq man --dir /usr/local/share/man/man1
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write every page into this directory (created if needed) instead
    /// of printing the main one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args, out: &Output) -> Result<(), Failure> {
    let Some(dir) = args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .map_err(|e| Failure::other(format!("could not render the manual page: {e}")))?;
        return out.bytes(&page);
    };
    let cannot = |e: std::io::Error| {
        Failure::invalid(format!(
            "could not write the manual pages to {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(&dir).map_err(cannot)?;
    // Built first, so that each command's page is named after its whole
    // path (taskq-schedule-add.1).
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    write_pages(command, &dir, &mut pages).map_err(cannot)?;
    if out.json {
        return out.json(&serde_json::json!({"dir": dir, "pages": pages}));
    }
    out.line(format!(
        "wrote {} manual pages to {}",
        pages.len(),
        dir.display()
    ))
}

/// Writes the page of `command` and of each of its visible commands.
fn write_pages(
    command: clap::Command,
    dir: &Path,
    pages: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, pages)?;
    }
    pages.push(clap_mangen::Man::new(command).generate_to(dir)?);
    Ok(())
}
