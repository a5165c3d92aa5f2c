//! `taskq completions`

use clap::CommandFactory;

use crate::cli::Cli;
use crate::failure::Failure;
use crate::output::Output;

/// Print the shell completion script for taskq.
///
/// Load it in the shell's start-up file, or save it where the shell looks
/// for completions. Needs no database.
///
/// Examples:
///   bash: taskq completions bash > ~/.local/share/bash-completion/completions/taskq
///   zsh:  taskq completions zsh > ~/.zfunc/_taskq   (with ~/.zfunc on $fpath)
///   fish: taskq completions fish > ~/.config/fish/completions/taskq.fish
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args, out: &Output) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "taskq", &mut script);
    out.bytes(&script)
}
