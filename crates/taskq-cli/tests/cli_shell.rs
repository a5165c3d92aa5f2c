//! What taskq gives the shell it runs in: completion scripts and manual
//! pages, written without a database.

use assert_cmd::Command;
use serde_json::Value;

/// `taskq` in a fresh directory, with a database that does not exist:
/// these commands must not touch it.
fn taskq(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::cargo_bin("taskq").unwrap();
    command
        .current_dir(dir.path())
        .env("TASKQ_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    command
}

#[test]
fn completions_load_in_bash_and_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let bash = taskq(&dir).args(["completions", "bash"]).assert().success();
    let script = String::from_utf8(bash.get_output().stdout.clone()).unwrap();
    for command in ["enqueue", "schedule", "limit", "dashboard", "completions"] {
        assert!(script.contains(command), "bash completions lack {command}");
    }
    // Bash accepts the script and registers it for taskq.
    let path = dir.path().join("taskq.bash");
    std::fs::write(&path, &script).unwrap();
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p taskq", path.display()))
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("taskq"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = taskq(&dir).args(["completions", shell]).assert().success();
        let script = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(script.contains("enqueue"), "{shell}: {script:.200}");
    }
    let refused = taskq(&dir).args(["completions", "tcsh"]).assert().code(2);
    assert!(String::from_utf8_lossy(&refused.get_output().stderr).contains("tcsh"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only taskq.bash"
    );
}

#[test]
fn the_manual_page_prints_and_one_is_written_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let man = taskq(&dir).arg("man").assert().success();
    let page = String::from_utf8(man.get_output().stdout.clone()).unwrap();
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{page:.200}"
    );
    assert!(page.contains("taskq") && page.contains("enqueue"));
    let pages = dir.path().join("man1");
    let written = taskq(&dir)
        .args(["--json", "man", "--dir", pages.to_str().unwrap()])
        .assert()
        .success();
    let answer: Value = serde_json::from_slice(&written.get_output().stdout).unwrap();
    let listed: Vec<&str> = answer["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|entry| entry.unwrap().path().display().to_string())
        .collect();
    on_disk.sort();
    let mut listed_sorted: Vec<String> = listed.iter().map(|p| p.to_string()).collect();
    listed_sorted.sort();
    assert_eq!(on_disk, listed_sorted);
    for name in [
        "taskq.1",
        "taskq-enqueue.1",
        "taskq-schedule-add.1",
        "taskq-man.1",
    ] {
        let text = std::fs::read_to_string(pages.join(name)).unwrap();
        assert!(text.contains(".SH"), "{name} is not a manual page");
    }
    // A directory that cannot be made is a usage error, said plainly.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let refused = taskq(&dir)
        .args(["man", "--dir", file.join("man1").to_str().unwrap()])
        .assert()
        .code(2);
    let said = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(said.contains("could not write the manual pages"), "{said}");
}
