//! The progress bar of one-shot runs over a big file: on a terminal (a
//! pseudo-terminal made by util-linux `script`), a bar with bytes and
//! lines on standard error; anywhere else, nothing: the output is the one
//! a small file gives.

use std::path::Path;
use std::process::{Command, Stdio};

use stxd::format::Kind;

use crate::util::{Run, Sandbox, sales_payload, seal, test_secret};

/// Seals a SALES file of at least `bytes` bytes into `dir`; returns the
/// manifest and the line count.
fn big_sales(dir: &Path, sequence: u64, bytes: usize) -> (std::path::PathBuf, u64) {
    let (payload, lines) = sales_payload(bytes);
    assert!(payload.len() >= bytes, "{} bytes", payload.len());
    let m = seal(dir, &test_secret(), Kind::Sales, sequence, &payload, lines);
    (dir.join(m.manifest_name()), lines)
}

fn secret_file(sb: &Sandbox) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = sb.path().join("test.key");
    std::fs::write(&path, b"test secret for the opera-tourism link").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

#[test]
fn a_big_file_read_off_a_terminal_prints_exactly_what_a_small_one_does() {
    let sb = Sandbox::new();
    let key = secret_file(&sb);
    let (big, big_lines) = big_sales(&sb.path().join("big"), 1, 6 << 20);
    let (small, small_lines) = big_sales(&sb.path().join("small"), 1, 2_000);
    let inspect = |m: &Path| {
        let run = sb.stxd(&["inspect", m.to_str().unwrap(), "--secret-file", &key]);
        run.expect_code(0);
        run
    };
    let big_run = inspect(&big);
    let small_run = inspect(&small);
    // Standard error is a pipe here: not a byte of a bar.
    assert_eq!(big_run.stderr(), "", "{}", big_run.stderr());
    assert_eq!(small_run.stderr(), "");
    // The same lines, each with its label; only the figures differ.
    let labels = |run: &Run| -> Vec<String> {
        run.stdout()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(labels(&big_run), labels(&small_run));
    assert!(
        small_run
            .stdout()
            .contains(&format!("records:   {small_lines} (sales {small_lines})"))
    );
    assert!(
        big_run
            .stdout()
            .contains(&format!("records:   {big_lines} (sales {big_lines})")),
        "{}",
        big_run.stdout()
    );
}

/// Runs `stxd ARGS…` on a pseudo-terminal (`script`), standard error and
/// output both to it; returns what the terminal received.
fn on_a_terminal(sb: &Sandbox, args: &[&str]) -> (i32, String) {
    let mut line = format!("'{}'", env!("CARGO_BIN_EXE_stxd"));
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env("STXD_LOG", "warn")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) makes the pseudo-terminal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_a_big_file_gets_a_bar_with_bytes_and_lines_and_a_small_one_none() {
    let sb = Sandbox::new();
    let key = secret_file(&sb);
    let (big, lines) = big_sales(&sb.path().join("big"), 1, 6 << 20);
    let (code, screen) = on_a_terminal(
        &sb,
        &["inspect", big.to_str().unwrap(), "--secret-file", &key],
    );
    assert_eq!(code, 0, "{screen}");
    let payload = "opera-tourism.SALES.00000001.csv";
    assert!(
        screen.contains(&format!("verify {payload}"))
            || screen.contains(&format!("parse {payload}")),
        "no bar naming the pass and the file:\n{screen}"
    );
    assert!(screen.contains(" lines"), "no line count:\n{screen}");
    assert!(screen.contains("MiB"), "no byte count:\n{screen}");
    assert!(
        screen.contains(&format!("records:   {lines} (sales {lines})")),
        "the result still printed:\n{screen}"
    );
    // Under MIN_BYTES: no bar at all.
    let (small, _) = big_sales(&sb.path().join("small"), 1, 2_000);
    let (code, screen) = on_a_terminal(
        &sb,
        &["inspect", small.to_str().unwrap(), "--secret-file", &key],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains(&format!("verify {payload}"))
            && !screen.contains(&format!("parse {payload}")),
        "a bar for a small file:\n{screen}"
    );
}
