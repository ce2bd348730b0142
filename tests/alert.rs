//! Alerts reach real destinations: a small HTTP server on 127.0.0.1 that
//! the test starts (and scripts: 500, no answer, 200), and shell scripts the
//! test writes. The rate limit is driven by passing the time in
//! (`raise_at`), never by waiting for it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stxd::alert::{self, Alert, Alerter, Event, Incident, Options};
use stxd::exchange::Role;

/// How long a test waits for deliveries before failing.
const DEADLINE: Duration = Duration::from_secs(30);

/// What the test server does with the next request.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// Reads the request and never answers (the connection stays open).
    Silent,
}

/// A request the server received.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
    body: serde_json::Value,
}

/// An HTTP server on 127.0.0.1: answers with `script` in turn, then 200.
struct Hook {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Hook {
    fn start(script: &[Reply]) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (recorded, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        let mut script: std::collections::VecDeque<Reply> = script.iter().copied().collect();
        std::thread::spawn(move || {
            let mut silent = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                recorded.lock().unwrap().push(request);
                match script.pop_front().unwrap_or(Reply::Status(200)) {
                    Reply::Status(code) => {
                        let mut stream = stream;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} Scripted\r\nContent-Length: 7\r\nConnection: close\r\n\r\nscripted"
                        );
                    }
                    Reply::Silent => silent.push(stream),
                }
            }
        });
        Hook {
            port,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/stxd", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived.
    fn wait_for(&self, n: usize) {
        let start = Instant::now();
        while self.requests.lock().unwrap().len() < n {
            assert!(
                start.elapsed() < DEADLINE,
                "{} requests",
                self.requests().len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        headers,
        body: serde_json::from_slice(&body).ok()?,
    })
}

/// The `[[alert]]` tables of `blocks`, read through the config.
fn alerts(blocks: &str) -> Vec<Alert> {
    stxd::config::parse(&config_with(blocks), "test")
        .unwrap_or_else(|e| panic!("{e}"))
        .alerts
}

fn config_with(blocks: &str) -> String {
    format!(
        r#"state_dir = "var"
[[institution]]
code = "TOURISM"
role = "distributor"
[[link]]
name = "opera-tourism"
manager = "OPERA"
distributor = "TOURISM"
login = "TOURISM_OPE@TOURISM"
secret_file = "s.key"
transport = {{ kind = "local", dir = "x" }}
{blocks}"#
    )
}

/// Short retry delays, so retries do not slow the tests.
fn quick() -> Options {
    Options {
        first_retry: Duration::from_millis(10),
        max_retry: Duration::from_millis(50),
        ..Options::default()
    }
}

fn refused(file: &str) -> Incident {
    Incident::new(
        Event::FileRefused,
        alert::key(Event::FileRefused, &["opera-tourism", file]),
        format!("{file} refused: bad signature"),
    )
    .link("opera-tourism")
    .side(Role::Distributor)
    .file(file)
    .code("bad-signature")
    .fix("ask the sender to send it again")
}

/// A script that appends its environment's alert variables and its
/// standard input to `out`, then exits with `exit`.
fn script(dir: &Path, name: &str, out: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{{ printf '%s %s %s\\n' \"$STXD_ALERT_EVENT\" \"$STXD_ALERT_STATE\" \"$STXD_ALERT_KEY\"; cat; echo; }} >> '{}'\n{body}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The lines a [`script`] wrote: (`event state key`, body) pairs.
fn script_calls(out: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|pair| {
            (
                pair[0].to_owned(),
                serde_json::from_str(pair[1]).unwrap_or_else(|e| panic!("{e}: {:?}", pair[1])),
            )
        })
        .collect()
}

/// Logs of the threads started while the returned guard lives.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Buf(Arc::clone(&buf));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn private_file(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_burst_on_one_key_sends_one_opening_and_one_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start(&[]);
    let token = dir.path().join("token");
    private_file(&token, "s3cr3t-token\n", 0o600);
    let out = dir.path().join("calls");
    let notify = script(dir.path(), "notify.sh", &out, "exit 0");
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\nwebhook_token_file = \"{}\"\n\
             [[alert]]\nname = \"script\"\ncommand = [\"{}\", \"--quiet\"]\n",
            hook.url(),
            token.display(),
            notify.display()
        )),
        quick(),
    )
    .unwrap();
    for _ in 0..100 {
        alerter.raise(refused("f1"));
    }
    alerter.resolve(&alert::key(Event::FileRefused, &["opera-tourism", "f1"]));
    alerter.resolve("refused:opera-tourism:never-raised");
    assert!(alerter.flush(DEADLINE));

    let requests = hook.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let (open, resolved) = (&requests[0], &requests[1]);
    assert_eq!(open.path, "/hooks/stxd");
    assert_eq!(open.headers["authorization"], "Bearer s3cr3t-token");
    assert_eq!(open.headers["content-type"], "application/json");
    let b = &open.body;
    assert_eq!(b["stxd"], 1);
    assert_eq!(b["event"], "file-refused");
    assert_eq!(b["state"], "open");
    assert_eq!(b["key"], "refused:opera-tourism:f1");
    assert_eq!(b["link"], "opera-tourism");
    assert_eq!(b["side"], "distributor");
    assert_eq!(b["file"], "f1");
    assert_eq!(b["code"], "bad-signature");
    assert_eq!(b["summary"], "f1 refused: bad signature");
    assert_eq!(b["fix"], "ask the sender to send it again");
    assert!(b["host"].as_str().is_some_and(|h| !h.is_empty()), "{b}");
    let at = b["at"].as_str().unwrap();
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(resolved.body["state"], "resolved");
    assert_eq!(resolved.body["event"], "file-refused");
    assert_eq!(resolved.body["key"], "refused:opera-tourism:f1");

    let calls = script_calls(&out);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0, "file-refused open refused:opera-tourism:f1");
    assert_eq!(calls[1].0, "file-refused resolved refused:opera-tourism:f1");
    assert_eq!(calls[0].1, open.body, "the same body on stdin");
    assert_eq!(
        alerter.stats(),
        [
            (
                "hook".to_owned(),
                alert::Stats {
                    sent: 2,
                    failed: 0,
                    dropped: 0
                }
            ),
            (
                "script".to_owned(),
                alert::Stats {
                    sent: 2,
                    failed: 0,
                    dropped: 0
                }
            ),
        ]
    );
}

#[test]
fn the_rate_limit_is_per_key() {
    let hook = Hook::start(&[]);
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\n",
            hook.url()
        )),
        quick(),
    )
    .unwrap();
    for n in 0..100 {
        alerter.raise(refused(&format!("f{n}")));
        alerter.raise(refused(&format!("f{n}")));
    }
    assert!(alerter.flush(DEADLINE));
    let mut keys: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.body["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 100);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100, "100 distinct keys");
}

#[test]
fn an_open_incident_is_recalled_once_per_rate_limit_and_thresholds_wait() {
    let hook = Hook::start(&[]);
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\nrate_limit_seconds = 600\nparked_minutes = 30\n",
            hook.url()
        )),
        quick(),
    )
    .unwrap();
    let t0 = time::macros::datetime!(2026-12-01 09:00 UTC);
    let at = |s: i64| t0 + time::Duration::seconds(s);
    for s in [0, 1, 300, 599] {
        alerter.raise_at(refused("f1"), at(s));
    }
    alerter.raise_at(refused("f1"), at(600));
    alerter.raise_at(refused("f1"), at(601));
    let parked = Incident::new(Event::FileParked, "parked:opera-tourism:f2", "parked")
        .link("opera-tourism")
        .since(at(0));
    alerter.raise_at(parked.clone(), at(60));
    alerter.raise_at(parked.clone(), at(1799));
    alerter.raise_at(parked.clone(), at(1800));
    alerter.resolve_at("parked:opera-tourism:f2", at(1900));
    assert!(alerter.flush(DEADLINE));
    let seen: Vec<(String, String, bool, String)> = hook
        .requests()
        .iter()
        .map(|r| {
            (
                r.body["key"].as_str().unwrap().to_owned(),
                r.body["state"].as_str().unwrap().to_owned(),
                r.body["reminder"].as_bool().unwrap(),
                r.body["at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |k: &str, s: &str, r: bool, at: &str| (k.to_owned(), s.to_owned(), r, at.to_owned());
    assert_eq!(
        seen,
        [
            row(
                "refused:opera-tourism:f1",
                "open",
                false,
                "2026-12-01T09:00:00Z"
            ),
            row(
                "refused:opera-tourism:f1",
                "open",
                true,
                "2026-12-01T09:10:00Z"
            ),
            row(
                "parked:opera-tourism:f2",
                "open",
                false,
                "2026-12-01T09:30:00Z"
            ),
            row(
                "parked:opera-tourism:f2",
                "resolved",
                false,
                "2026-12-01T09:31:40Z"
            ),
        ]
    );
    assert_eq!(hook.requests()[2].body["since"], "2026-12-01T09:00:00Z");
}

#[test]
fn a_webhook_failing_twice_is_delivered_once_after_retries() {
    let hook = Hook::start(&[Reply::Status(500), Reply::Status(500)]);
    let (logs, _guard) = capture_logs();
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\n",
            hook.url()
        )),
        quick(),
    )
    .unwrap();
    alerter.raise(refused("f1"));
    assert!(alerter.flush(DEADLINE));
    let requests = hook.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    assert_eq!(
        alerter.stats()[0].1,
        alert::Stats {
            sent: 1,
            failed: 0,
            dropped: 0
        }
    );
    let logs = text(&logs);
    assert_eq!(
        logs.matches("alert delivery failed; retrying").count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("HTTP 500"), "{logs}");
    assert!(!logs.contains("alert not delivered"), "{logs}");
}

#[test]
fn a_refusing_webhook_is_not_retried_and_a_retried_one_gives_up_logged() {
    let hook = Hook::start(&[
        Reply::Status(404),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
    ]);
    let (logs, _guard) = capture_logs();
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\nretries = 2\n",
            hook.url()
        )),
        quick(),
    )
    .unwrap();
    alerter.raise(refused("f1"));
    alerter.raise(refused("f2"));
    alerter.raise(refused("f3"));
    assert!(alerter.flush(DEADLINE));
    let keys: Vec<_> = hook
        .requests()
        .iter()
        .map(|r| r.body["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["f1", "f2", "f2", "f2", "f3"]);
    assert_eq!(
        alerter.stats()[0].1,
        alert::Stats {
            sent: 1,
            failed: 2,
            dropped: 0
        }
    );
    let logs = text(&logs);
    assert_eq!(logs.matches("alert not delivered").count(), 2, "{logs}");
    assert!(logs.contains("key=refused:opera-tourism:f2"), "{logs}");
    assert!(logs.contains("attempts=3"), "{logs}");
    assert!(logs.contains("HTTP 404"), "{logs}");
}

#[test]
fn a_webhook_that_never_answers_times_out_and_the_next_alert_goes() {
    let hook = Hook::start(&[Reply::Silent]);
    let (logs, _guard) = capture_logs();
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\ntimeout_seconds = 1\nretries = 0\n",
            hook.url()
        )),
        quick(),
    )
    .unwrap();
    let start = Instant::now();
    alerter.raise(refused("f1"));
    alerter.raise(refused("f2"));
    assert!(alerter.flush(DEADLINE));
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let files: Vec<_> = hook
        .requests()
        .iter()
        .map(|r| r.body["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files, ["f1", "f2"]);
    assert_eq!(
        alerter.stats()[0].1,
        alert::Stats {
            sent: 1,
            failed: 1,
            dropped: 0
        }
    );
    let logs = text(&logs);
    assert!(logs.contains("alert not delivered"), "{logs}");
    assert!(logs.to_lowercase().contains("timeout"), "{logs}");
}

#[test]
fn raising_never_waits_for_a_slow_destination_and_a_full_queue_drops_the_oldest() {
    let hook = Hook::start(&[Reply::Silent]);
    let (logs, _guard) = capture_logs();
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"hook\"\nwebhook = \"{}\"\ntimeout_seconds = 2\nretries = 0\n",
            hook.url()
        )),
        Options {
            queue: 3,
            ..quick()
        },
    )
    .unwrap();
    alerter.raise(refused("f0"));
    hook.wait_for(1);
    // The thread is stuck on f0; ten more raise at once, seven fall out.
    let start = Instant::now();
    for n in 1..=10 {
        alerter.raise(refused(&format!("f{n}")));
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(alerter.flush(DEADLINE));
    let files: Vec<_> = hook
        .requests()
        .iter()
        .map(|r| r.body["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files, ["f0", "f8", "f9", "f10"]);
    assert_eq!(
        alerter.stats()[0].1,
        alert::Stats {
            sent: 3,
            failed: 1,
            dropped: 7
        }
    );
    let logs = text(&logs);
    assert_eq!(
        logs.matches("alert queue full").count(),
        1,
        "logged once: {logs}"
    );
    assert!(logs.contains("dropped=7"), "{logs}");
}

#[test]
fn a_failing_command_is_logged_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, _guard) = capture_logs();
    let failing = script(
        dir.path(),
        "failing.sh",
        &dir.path().join("failing-calls"),
        "echo 'mail relay unreachable' >&2\nexit 3",
    );
    let sleeping = script(
        dir.path(),
        "sleeping.sh",
        &dir.path().join("sleeping-calls"),
        "sleep 30",
    );
    let out = dir.path().join("calls");
    let good = script(dir.path(), "good.sh", &out, "exit 0");
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"failing\"\ncommand = [\"{}\"]\nretries = 1\n\
             [[alert]]\nname = \"sleeping\"\ncommand = [\"{}\"]\ntimeout_seconds = 1\nretries = 0\n\
             [[alert]]\nname = \"good\"\ncommand = [\"{}\"]\n",
            failing.display(),
            sleeping.display(),
            good.display()
        )),
        quick(),
    )
    .unwrap();
    let start = Instant::now();
    alerter.raise(refused("f1"));
    alerter.raise(
        Incident::new(Event::JobFailed, "job:opera-tourism:poll", "poll failed")
            .link("opera-tourism"),
    );
    assert!(alerter.flush(DEADLINE));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let calls: Vec<_> = script_calls(&out)
        .into_iter()
        .map(|(head, _)| head)
        .collect();
    assert_eq!(
        calls,
        [
            "file-refused open refused:opera-tourism:f1",
            "job-failed open job:opera-tourism:poll"
        ]
    );
    let stats: HashMap<_, _> = alerter.stats().into_iter().collect();
    assert_eq!(
        stats["failing"],
        alert::Stats {
            sent: 0,
            failed: 2,
            dropped: 0
        }
    );
    assert_eq!(
        stats["sleeping"],
        alert::Stats {
            sent: 0,
            failed: 2,
            dropped: 0
        }
    );
    assert_eq!(
        stats["good"],
        alert::Stats {
            sent: 2,
            failed: 0,
            dropped: 0
        }
    );
    // The failing one ran twice per notification (one retry).
    assert_eq!(script_calls(&dir.path().join("failing-calls")).len(), 4);
    let logs = text(&logs);
    assert_eq!(logs.matches("alert not delivered").count(), 4, "{logs}");
    assert!(
        logs.contains("exit code 3: mail relay unreachable"),
        "{logs}"
    );
    assert!(logs.contains("killed after the timeout of 1s"), "{logs}");
    assert!(logs.contains("alert=failing"), "{logs}");
}

#[test]
fn alert_tables_are_checked_whole_with_their_key_paths() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = r#"
[[alert]]
name = "both"
command = ["/bin/true"]
webhook = "https://hooks.example.org/x"

[[alert]]
name = "none"

[[alert]]
name = "bad-url"
webhook = "hooks.example.org/x"
events = ["file-refused", "file-exploded"]

[[alert]]
name = "Bad Name"
command = ["notify-send"]
webhook_token_file = "t"
timeout_seconds = 0
retries = 11
rate_limit_seconds = -5
parked_minutes = 10081
"#;
    let e = stxd::config::parse(&config_with(blocks), "t").unwrap_err();
    let at: Vec<_> = e.errors.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "alert[0]",
            "alert[1]",
            "alert[2].webhook",
            "alert[2].events",
            "alert[3].name",
            "alert[3].command",
            "alert[3].timeout_seconds",
            "alert[3].retries",
            "alert[3].rate_limit_seconds",
            "alert[3].parked_minutes",
        ],
        "{e}"
    );
    let all = e.to_string();
    assert!(all.contains("not both"), "{all}");
    assert!(all.contains("http:// or https://"), "{all}");
    assert!(all.contains("\"file-exploded\""), "{all}");
    assert!(all.contains("absolute path"), "{all}");

    let unknown = stxd::config::parse(
        &config_with("[[alert]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nchannel = \"x\"\n"),
        "t",
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("channel"), "{unknown}");

    let both_misuse = stxd::config::parse(
        &config_with(
            "[[alert]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nwebhook_token_file = \"t\"\n",
        ),
        "t",
    )
    .unwrap_err();
    assert_eq!(both_misuse.errors[0].at, "alert[0].webhook_token_file");

    // What the files say is checked when the alerter starts (and by
    // `stxd check`), not when any command reads the config.
    let token = dir.path().join("token");
    private_file(&token, "tok\n", 0o644);
    let not_executable = dir.path().join("notify");
    private_file(&not_executable, "#!/bin/sh\n", 0o644);
    let parsed = alerts(&format!(
        "[[alert]]\nname = \"hook\"\nwebhook = \"https://hooks.example.org/x\"\nwebhook_token_file = \"{}\"\n\
         [[alert]]\nname = \"cmd\"\ncommand = [\"{}\"]\n\
         [[alert]]\nname = \"gone\"\ncommand = [\"/nonexistent/notify\"]\n\
         [[alert]]\nname = \"missing-token\"\nwebhook = \"http://127.0.0.1:9/x\"\nwebhook_token_file = \"{}\"\n",
        token.display(),
        not_executable.display(),
        dir.path().join("absent").display()
    ));
    let problems = alert::check(&parsed);
    let at: Vec<_> = problems.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "alert[0].webhook_token_file",
            "alert[1].command",
            "alert[2].command",
            "alert[3].webhook_token_file"
        ],
        "{problems:?}"
    );
    assert!(
        problems[0]
            .problem
            .contains("readable by others (mode 644)"),
        "{problems:?}"
    );
    assert!(problems[0].problem.contains("chmod 600"), "{problems:?}");
    assert!(
        problems[1].problem.contains("not executable"),
        "{problems:?}"
    );
    assert!(problems[3].problem.contains("is missing"), "{problems:?}");
    let refused_start = Alerter::start(&parsed).unwrap_err();
    assert_eq!(refused_start, problems);
    private_file(&token, "tok\n", 0o600);
    assert_eq!(alert::check(&parsed[..1]), []);
}

#[test]
fn the_sendmail_example_mails_each_notification() {
    use std::os::unix::fs::PermissionsExt;
    let example = crate::util::repo().join("config/examples/alert-sendmail.sh");
    let syntax = std::process::Command::new("/bin/sh")
        .arg("-n")
        .arg(&example)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    let mode = std::fs::metadata(&example).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "the example is executable: {mode:o}");

    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails");
    let sendmail = dir.path().join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\n{{ echo \"ARGS: $*\"; cat; echo '-- end'; }} >> '{}'\n",
            mails.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    let alerter = Alerter::start_with(
        &alerts(&format!(
            "[[alert]]\nname = \"ops-mail\"\ncommand = [\"/usr/bin/env\", \"STXD_SENDMAIL={}\", \"{}\", \"ops@example.org\", \"duty@example.org\"]\n",
            sendmail.display(),
            example.display()
        )),
        quick(),
    )
    .unwrap();
    let mut incident = refused("f1");
    incident.summary = "f1 refused: \"bad\" signature\nSubject: injected".into();
    alerter.raise(incident);
    alerter.resolve("refused:opera-tourism:f1");
    assert!(alerter.flush(DEADLINE));
    assert_eq!(alerter.stats()[0].1.sent, 2, "{:?}", alerter.stats());
    let text = std::fs::read_to_string(&mails).unwrap();
    let mails: Vec<&str> = text.split("-- end\n").filter(|m| !m.is_empty()).collect();
    assert_eq!(mails.len(), 2, "{text}");
    let open = mails[0];
    assert!(open.starts_with("ARGS: -t -oi\n"), "{open}");
    assert!(
        open.contains("\nTo: ops@example.org, duty@example.org\n"),
        "{open}"
    );
    assert!(
        open.contains(
            "\nSubject: [stxd] file-refused: f1 refused: \"bad\" signature Subject: injected\n"
        ),
        "one header line: {open}"
    );
    assert_eq!(open.matches("\nSubject:").count(), 1, "{open}");
    assert!(
        open.contains("\nFix:     ask the sender to send it again\n"),
        "{open}"
    );
    assert!(
        open.contains("\"key\":\"refused:opera-tourism:f1\""),
        "{open}"
    );
    let resolved = mails[1];
    assert!(
        resolved.contains("\nSubject: [stxd] resolved: file-refused refused:opera-tourism:f1\n"),
        "{resolved}"
    );
}

/// The `[[alert]]` tables of `config/stxd.toml`, uncommented.
fn documented_alert_tables() -> String {
    let shipped = std::fs::read_to_string(crate::util::repo().join("config/stxd.toml")).unwrap();
    shipped
        .lines()
        .skip_while(|l| *l != "# [[alert]]")
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix("#")).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_documented_alert_tables_are_valid() {
    let parsed = alerts(&documented_alert_tables());
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    let mail = &parsed[0];
    assert_eq!(mail.name, "ops-mail");
    assert!(
        matches!(&mail.target, alert::Target::Command(argv) if argv[0].ends_with("alert-sendmail.sh"))
    );
    assert!(mail.wants(Event::Resolved) && !mail.wants(Event::FileHeld));
    assert_eq!(mail.rate_limit, Duration::from_secs(3600));
    assert_eq!(
        mail.threshold(Event::SftpDown),
        Duration::from_secs(15 * 60)
    );
    assert!(matches!(
        &parsed[1].target,
        alert::Target::Webhook {
            token_file: Some(_),
            ..
        }
    ));
    // The defaults, on a table that sets nothing else.
    let bare = &alerts("[[alert]]\nname = \"a\"\nwebhook = \"http://127.0.0.1:1/\"\n")[0];
    assert_eq!(
        (
            bare.timeout,
            bare.retries,
            bare.rate_limit,
            bare.events.clone()
        ),
        (Duration::from_secs(10), 3, Duration::from_secs(300), None)
    );
    assert_eq!(
        [
            Event::FileParked,
            Event::FileHeld,
            Event::SftpDown,
            Event::FileRefused
        ]
        .map(|e| bare.threshold(e)),
        [3600, 3600, 900, 0].map(Duration::from_secs)
    );
}

#[test]
fn stxd_check_reports_the_files_an_alert_names() {
    let sb = crate::util::Sandbox::new();
    let token = sb.path().join("hook.token");
    private_file(&token, "tok\n", 0o640);
    let config = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[alert]]\nname = \"hook\"\nwebhook = \"https://hooks.example.org/x\"\nwebhook_token_file = \"{}\"\n\
         [[alert]]\nname = \"mail\"\ncommand = [\"/nonexistent/alert-sendmail.sh\"]\n",
        token.display()
    ));
    std::fs::write(&config, text).unwrap();
    // Reading the config never needs the token: status works.
    let status = sb.stxd(&["status"]);
    assert_ne!(status.code(), 2, "{}", status.stderr());
    assert!(!status.stderr().contains("token"), "{}", status.stderr());
    sb.stxd(&["init"]).expect_code(0);
    let run = sb.stxd(&["check"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("alert[0].webhook_token_file: token file"),
        "{out}"
    );
    assert!(out.contains("(mode 640): run chmod 600"), "{out}");
    assert!(
        out.contains("alert[1].command: cannot run /nonexistent/alert-sendmail.sh"),
        "{out}"
    );
    assert!(out.contains("not ready: 2 errors"), "{out}");
    private_file(&token, "tok\n", 0o600);
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("/nonexistent/alert-sendmail.sh", "/bin/true"),
    )
    .unwrap();
    sb.ready();
}

/// The demo sandbox with `stxd check` done and one `[[alert]]` webhook
/// pointing at `hook`, all events sent.
fn daemon_sandbox(hook: &Hook) -> crate::util::Sandbox {
    let sb = crate::util::Sandbox::new();
    sb.ready();
    let config = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[alert]]\nname = \"ops\"\nwebhook = \"{}\"\n",
        hook.url()
    ));
    std::fs::write(&config, text).unwrap();
    sb
}

/// Seals catalogue `sequence` into the demo distributor's inbox with a
/// secret that is not the link's: the daemon refuses it (bad HMAC).
fn refused_pair(sb: &crate::util::Sandbox, sequence: u64) -> String {
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let m = crate::util::seal(
        &inbox,
        &crate::util::test_secret(),
        stxd::format::Kind::Catalogue,
        sequence,
        b"not signed with the link's secret",
        1,
    );
    m.manifest_name()
}

/// Empties the distributor's `error/` as ops would, once they read it.
fn clear_error(sb: &crate::util::Sandbox) {
    let error = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/error");
    for entry in std::fs::read_dir(&error).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
}

/// Per key, the `state`s received, in order.
fn states_by_key(hook: &Hook) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in hook.requests() {
        out.entry(r.body["key"].as_str().unwrap().to_owned())
            .or_default()
            .push(r.body["state"].as_str().unwrap().to_owned());
    }
    out
}

#[test]
fn the_daemon_alerts_each_refused_file_once_and_resolves_it_once_cleared() {
    let hook = Hook::start(&[]);
    let sb = daemon_sandbox(&hook);
    let mut daemon = crate::util::Daemon::start(&sb);

    // One refused file: one opening.
    let first = refused_pair(&sb, 1);
    daemon.wait_log("file rejected");
    hook.wait_for(1);
    let [open] = hook
        .requests()
        .try_into()
        .unwrap_or_else(|r: Vec<Request>| panic!("{} requests: {r:?}\n{}", r.len(), daemon.log()));
    let key = format!("refused:opera-tourism:{first}");
    assert_eq!(open.body["event"], "file-refused");
    assert_eq!(open.body["state"], "open");
    assert_eq!(open.body["key"], key.as_str());
    assert_eq!(open.body["link"], "opera-tourism");
    assert_eq!(open.body["file"], first.as_str());
    assert_eq!(open.body["side"], "distributor");

    // Ops remove it from error/: one resolution, at the next listing.
    clear_error(&sb);
    hook.wait_for(2);
    let resolved = &hook.requests()[1];
    assert_eq!(resolved.body["state"], "resolved");
    assert_eq!(resolved.body["key"], key.as_str());

    // A burst of 100 refused files: one opening per file…
    let burst: Vec<String> = (2..=101).map(|seq| refused_pair(&sb, seq)).collect();
    hook.wait_for(2 + 100);
    // …and, error/ cleared, one resolution per file.
    let error = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/error");
    let start = Instant::now();
    while crate::util::manifests(&error, "").len() < 100 {
        assert!(start.elapsed() < DEADLINE, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    clear_error(&sb);
    hook.wait_for(2 + 200);

    // Nothing more: the daemon stops (delivering what it queued) and the
    // count is final.
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    let states = states_by_key(&hook);
    assert_eq!(hook.requests().len(), 202, "{states:?}");
    assert_eq!(states.len(), 101);
    assert_eq!(states[&key], ["open", "resolved"]);
    for name in &burst {
        let k = format!("refused:opera-tourism:{name}");
        assert_eq!(
            states.get(&k).map(Vec::as_slice),
            Some(&["open".to_owned(), "resolved".to_owned()][..]),
            "{k}"
        );
    }
    assert!(
        hook.requests()
            .iter()
            .all(|r| r.body["event"] == "file-refused" && r.body["reminder"] == false),
        "{:?}",
        hook.requests()
    );
}

#[test]
fn the_daemon_refuses_to_start_when_an_alert_cannot_and_names_its_key() {
    let sb = crate::util::Sandbox::new();
    sb.ready();
    let config = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[alert]]\nname = \"ops\"\nwebhook = \"http://127.0.0.1:9/x\"\nwebhook_token_file = \"missing.token\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut daemon = crate::util::Daemon::spawn(&sb, &[], "info", &[]);
    let code = daemon.wait_exit();
    assert_ne!(code, Some(0), "{}", daemon.log());
    assert!(
        daemon.log().contains("alert[0].webhook_token_file"),
        "{}",
        daemon.log()
    );
    assert!(!daemon.log().contains("ready"), "{}", daemon.log());
}

#[test]
fn a_reconciliation_job_raises_a_difference_once_and_resolves_it_when_the_stores_agree() {
    let hook = Hook::start(&[]);
    let sb = daemon_sandbox(&hook);
    sb.contingent_applied();
    sb.sell("PARTERRE:A:1");
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    // Someone edits the manager's booked ticket by hand: the two stores
    // now disagree on the money.
    let opera = || rusqlite::Connection::open(sb.path().join("var/state/OPERA.sqlite")).unwrap();
    opera()
        .execute_batch("UPDATE ticket SET amount = amount + 100")
        .unwrap();

    let mut daemon = crate::util::Daemon::start(&sb);
    sb.stxd(&["trigger", "reconcile", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log("the reconciliation found differences");
    hook.wait_for(1);
    let key = "reconcile:opera-tourism";
    let open = hook.requests()[0].clone();
    assert_eq!(
        open.body["event"], "reconcile-difference",
        "{:?}",
        open.body
    );
    assert_eq!(open.body["state"], "open");
    assert_eq!(open.body["key"], key);
    assert_eq!(open.body["link"], "opera-tourism");

    // Run again while still different: nothing new is sent (one incident).
    sb.stxd(&["trigger", "reconcile", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log_n("the reconciliation found differences", 2);
    // Put right: the next run resolves it, once.
    opera()
        .execute_batch("UPDATE ticket SET amount = amount - 100")
        .unwrap();
    sb.stxd(&["trigger", "reconcile", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log("reconciliation consistent");
    hook.wait_for(2);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert_eq!(
        states_by_key(&hook).get(key).map(Vec::as_slice),
        Some(&["open".to_owned(), "resolved".to_owned()][..]),
        "{:?}",
        hook.requests()
    );
    assert_eq!(hook.requests().len(), 2, "{:?}", hook.requests());
}

#[test]
fn a_file_failing_on_a_busy_store_is_alerted_as_held_once_and_resolved_once_applied() {
    let hook = Hook::start(&[]);
    let sb = daemon_sandbox(&hook);
    let config = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    // The [[alert]] table is the file's last: held files are sent at once.
    text.push_str("held_minutes = 0\n");
    std::fs::write(&config, text).unwrap();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    let mut daemon = crate::util::Daemon::start(&sb);
    // Another program holds the distributor's store for writing.
    let tourism = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    tourism.execute_batch("BEGIN EXCLUSIVE").unwrap();
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log("file not processed");
    hook.wait_for(1);
    let open = hook.requests()[0].clone();
    assert_eq!(open.body["event"], "file-held", "{:?}", open.body);
    assert_eq!(open.body["state"], "open");
    assert_eq!(open.body["code"], "store", "{:?}", open.body);
    let key = open.body["key"].as_str().unwrap().to_owned();
    assert!(
        key.ends_with("opera-tourism.SEATPLAN.00000001.stx"),
        "{key}"
    );
    // The other program lets go: the next listing applies it and the
    // incident resolves, once.
    tourism.execute_batch("ROLLBACK").unwrap();
    daemon.wait_log("file applied");
    hook.wait_for(2);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert_eq!(
        states_by_key(&hook).get(&key).map(Vec::as_slice),
        Some(&["open".to_owned(), "resolved".to_owned()][..]),
        "{:?}",
        hook.requests()
    );
    assert_eq!(hook.requests().len(), 2, "{:?}", hook.requests());
}
